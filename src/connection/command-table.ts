import type { Node } from '../hub/node.js';
import type { OpenedResult, Session, SubscribeAnswer } from '../hub/session.js';
import type { Subscription } from '../hub/subscription.js';
import { presenceUsers } from '../presence/presence-store.js';
import type { Method, Params } from '../protocol/commands.js';
import { publicationPush, replyWithPublications } from '../hub/publication-frames.js';
import { HubError } from '../protocol/errors.js';
import { encodeReply } from '../protocol/pushes.js';
import type { Publication } from '../stream/types.js';

/** The session a command runs for, and how its replies and pushes are queued. */
export interface CommandSession extends Session {
  sendText(text: string): void;
  enqueue(frame: Buffer): void;
}

/** Every command the hub answers; `connect` and `refresh` change the session itself (connection.ts). */
export type HubMethod = Exclude<Method, 'connect' | 'refresh'>;

/**
 * The dispatch table: runs one checked command of a connected session through the Node and
 * returns the encoded reply (subscribe answers through its SubscribeAnswer: undefined).
 */
export async function runHubCommand(
  node: Node,
  session: CommandSession,
  method: HubMethod,
  params: Params<Method>,
  id: number,
): Promise<string | undefined> {
  const commands = node.commands;
  switch (method) {
    case 'subscribe': {
      const p = params as Params<'subscribe'>;
      await node.subscribe(session, p.channel, p.since, subscribeAnswer(session, id));
      return undefined;
    }
    case 'unsubscribe':
      node.unsubscribe(session, (params as Params<'unsubscribe'>).channel);
      return encodeReply(id, {});
    case 'publish':
      return encodeReply(id, await commands.publish(session, params as Params<'publish'>));
    case 'history': {
      const p = params as Params<'history'>;
      const read = await commands.history(session, p);
      const mode = node.resolver.resolve(p.channel).options.publicationInfo;
      const result = read.latest ? { position: read.position, latest: true } : { position: read.position };
      return replyWithPublications(session.protocolVersion, id, result, read.publications, mode);
    }
    case 'presence': {
      const clients = await commands.presence(session, (params as Params<'presence'>).channel);
      return encodeReply(id, { clients, users: presenceUsers(clients) });
    }
    case 'typing':
      await commands.typing(session, params as Params<'typing'>);
      return encodeReply(id, {});
    case 'markRead':
      return encodeReply(id, await commands.markRead(session, params as Params<'markRead'>));
    case 'readState':
      return encodeReply(id, await commands.readState(session, (params as Params<'readState'>).channel));
    case 'readers':
      return encodeReply(id, { readers: await commands.readers(session, (params as Params<'readers'>).channel) });
    case 'setStatus':
      return encodeReply(id, await commands.setStatus(session, (params as Params<'setStatus'>).status));
    case 'statuses':
      return encodeReply(id, { users: await commands.statuses((params as Params<'statuses'>).users) });
    case 'rpc': {
      const p = params as Params<'rpc'>;
      return encodeReply(id, { data: await commands.rpc(session, p.method, p.data) });
    }
    case 'doc': {
      const p = params as Params<'doc'>;
      if (!node.documents) throw new HubError(124, 'documents are not served by this hub');
      await node.documents.receive(session, p.channel, new Uint8Array(Buffer.from(p.message.$binary, 'base64')));
      return encodeReply(id, {});
    }
    case 'leaveDoc':
      node.documents?.leave(session, (params as Params<'leaveDoc'>).channel);
      return encodeReply(id, {});
    case 'ping':
      return encodeReply(id, {});
    case 'emit':
      // With an id, a client event is acknowledged (the SDK sends them without).
      await commands.emit(session, params as Params<'emit'>);
      return encodeReply(id, {});
  }
}

/** A subscribe is answered by one reply (with the first page), then pages as pushes. */
function subscribeAnswer(session: CommandSession, id: number): SubscribeAnswer {
  return {
    opened: (sub: Subscription, result: OpenedResult, pubs: readonly Publication[]) => {
      session.sendText(replyWithPublications(session.protocolVersion, id, { ...result }, pubs, sub.channel.options.publicationInfo));
    },
    page: (sub: Subscription, pubs: readonly Publication[]) => sendPage(session, sub, pubs),
  };
}

/** A later page of a recovery, as publication pushes (as live: the first publication of a stream names its epoch). */
export function sendPage(session: CommandSession, sub: Subscription, pubs: readonly Publication[]): void {
  const mode = sub.channel.options.publicationInfo;
  for (const pub of pubs) session.enqueue(Buffer.from(publicationPush(session.protocolVersion, sub.channel.name, pub, sub.epoch, mode)));
}
