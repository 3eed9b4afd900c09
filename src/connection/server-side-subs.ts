import type { ResolvedChannel } from '../channels/channels.js';
import type { Node } from '../hub/node.js';
import { publicationFor } from '../hub/publication-frames.js';
import type { ProtocolVersion } from '../codec/codec.js';
import type { PublicationInfoMode } from '../protocol/pushes-v2.js';
import type { OpenedResult } from '../hub/session.js';
import { HubError, toWireError, type WireError } from '../protocol/errors.js';
import { withMembers } from '../protocol/pushes.js';
import type { Publication, StreamPosition } from '../stream/types.js';
import { sendPage, type CommandSession } from './command-table.js';

/** One server-side subscription as the connect reply states it: a subscribe reply's result. */
export interface ServerSideOpened {
  result: OpenedResult;
  publications: readonly Publication[];
  /** The namespace's `publicationInfo`, which the reply's publications follow. */
  mode: PublicationInfoMode;
}

/** What subscribing a connection's server-side channels gave, per channel. */
export interface ServerSideOutcome {
  subs: Map<string, ServerSideOpened>;
  refused: Map<string, WireError>;
}

/**
 * Subscribes `session` to the channels its identity names server-side (the connect proxy's
 * `channels`, the JWT `subs` claim), each as a client subscribe would be: the same rules, hook
 * and subscribe proxy, the same recovery from where the client says it stands (`since`, from
 * the connect command's `subs`). A channel refused is reported and skipped; the others go on.
 * All are authorized first (proxy calls may take a while), then subscribed one after another.
 * The caller holds the session's output until the connect reply is queued, so pages and live
 * publications of these channels follow the reply that opens them.
 */
export async function subscribeServerSide(
  node: Node,
  session: CommandSession,
  channels: readonly string[],
  since: Readonly<Record<string, { since?: StreamPosition }>> | undefined,
): Promise<ServerSideOutcome> {
  const outcome: ServerSideOutcome = { subs: new Map(), refused: new Map() };
  const authorized: ResolvedChannel[] = [];
  for (const name of new Set(channels)) {
    try {
      authorized.push(await node.commands.authorize(session, name));
    } catch (err) {
      outcome.refused.set(name, refusal(node, session, name, err));
    }
    if (session.closed) return outcome;
  }
  for (const ch of authorized) {
    try {
      await node.subscribeResolved(session, ch, since?.[ch.name]?.since, {
        opened: (sub, result, publications) => {
          outcome.subs.set(ch.name, { result, publications, mode: sub.channel.options.publicationInfo });
        },
        page: (sub, pubs) => sendPage(session, sub, pubs),
      });
    } catch (err) {
      outcome.refused.set(ch.name, refusal(node, session, ch.name, err));
    }
    if (session.closed) return outcome;
  }
  return outcome;
}

function refusal(node: Node, session: CommandSession, channel: string, err: unknown): WireError {
  if (!(err instanceof HubError)) node.commandFailed(`server-side subscribe ${channel}`, session.id, err);
  else node.metrics.error(err.code);
  return toWireError(err);
}

/**
 * The `subs` and `subsRefused` members of a connect result, as JSON text: per channel the
 * result a subscribe reply would carry, with its publications (already JSON) spliced in.
 */
export function encodeServerSide(outcome: ServerSideOutcome, version: ProtocolVersion): string {
  const subs: string[] = [];
  for (const [channel, { result, publications, mode }] of outcome.subs) {
    const list = publications.map((pub) => publicationFor(version, pub, mode)).join(',');
    subs.push(`${JSON.stringify(channel)}:${withMembers({ ...result }, `"publications":[${list}]`)}`);
  }
  let s = `"subs":{${subs.join(',')}}`;
  if (outcome.refused.size > 0) s += `,"subsRefused":${JSON.stringify(Object.fromEntries(outcome.refused))}`;
  return s;
}
