import type { IncomingHttpHeaders } from 'node:http';
import type { Identity } from '../auth/verifier.js';
import { assertCanSubscribe, type ChannelResolver } from '../channels/channels.js';
import type { ClientContext, HubHooks } from '../hub/hooks.js';
import { withTimeout } from '../limits/timeout.js';
import { HubError } from '../protocol/errors.js';

/** What a client may do with a document. */
export interface DocumentAccess {
  name: string;
  readOnly: boolean;
  ctx: ClientContext;
  /** The token's exp (Unix seconds), when it has one. */
  expires?: number;
}

export type CanEdit = (ctx: ClientContext, name: string) => boolean | Promise<boolean>;

/**
 * The usual channel permissions, applied to a document: the namespace must have
 * `document: true` (else 124); subscribing must be allowed (user-limited channels, the
 * `channels` claim, the onSubscribe hook; else 103). Publishing decides writing: with
 * `clientPublish: "none"`, or when the `canEdit` hook answers false, the document is read-only.
 */
export async function documentAccess(
  resolver: ChannelResolver,
  name: string,
  identity: Identity,
  client: string,
  headers: IncomingHttpHeaders,
  hooks: { hub: HubHooks; canEdit?: CanEdit; timeoutMs: number },
  transport: ClientContext['transport'] = 'websocket',
): Promise<DocumentAccess> {
  const ch = resolver.resolve(name);
  if (!ch.options.document) throw new HubError(124, `not a document: namespace "${ch.namespace}" has no document: true`);
  assertCanSubscribe(ch, identity.user, identity.channels);
  const ctx: ClientContext = {
    user: identity.user,
    client,
    transport,
    ...(identity.info !== undefined ? { info: identity.info } : {}),
    headers,
  };
  const { hub, canEdit, timeoutMs } = hooks;
  if (hub.onSubscribe) await withTimeout(Promise.resolve(hub.onSubscribe(ctx, name)), timeoutMs, () => new HubError(115, 'onSubscribe timed out'));
  let readOnly = ch.options.clientPublish === 'none';
  if (!readOnly && canEdit) {
    readOnly = !(await withTimeout(Promise.resolve(canEdit(ctx, name)), timeoutMs, () => new HubError(115, 'canEdit timed out')));
  }
  return { name, readOnly, ctx, ...(identity.expires !== undefined ? { expires: identity.expires } : {}) };
}
