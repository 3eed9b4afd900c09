import type { ChannelEvent, Publication } from '../stream/types.js';
import type { WireError } from './errors.js';

/**
 * Server → client frames, encoded by hand where they are hot. A publication push is encoded
 * once per broadcast and the same bytes go to every subscriber. `data` is already JSON text
 * and is spliced in, never parsed or re-encoded.
 */
export function encodePublicationPush(channel: string, pub: Publication, epoch?: string): string {
  let s = `{"push":"pub","channel":${JSON.stringify(channel)},"offset":${pub.offset},`;
  // The first publication of a stream names its epoch (clients that stood at 0 adopt it).
  if (epoch !== undefined) s += `"epoch":${JSON.stringify(epoch)},`;
  s += `"data":${pub.data}`;
  if (pub.info) s += `,"info":${JSON.stringify(pub.info)}`;
  return s + '}';
}

/** A publication inside a reply (subscribe recovery, history). */
export function encodePublication(pub: Publication): string {
  let s = `{"offset":${pub.offset},"data":${pub.data}`;
  if (pub.info) s += `,"info":${JSON.stringify(pub.info)}`;
  return s + '}';
}

export function encodeReply(id: number, result: unknown): string {
  return `{"id":${id},"result":${JSON.stringify(result)}}`;
}

/** `object` as JSON with `members` (already JSON text: `"k":…,"k2":…`) appended to it. */
export function withMembers(object: Record<string, unknown>, members: string): string {
  const head = JSON.stringify(object);
  return `${head.slice(0, -1)}${head.length > 2 ? ',' : ''}${members}}`;
}

/** A reply whose result holds already-encoded publications (kept as raw JSON). */
export function encodeReplyWithPublications(
  id: number,
  result: Record<string, unknown>,
  pubs: readonly Publication[],
  encode: (pub: Publication) => string = encodePublication,
): string {
  return `{"id":${id},"result":${withMembers(result, `"publications":[${pubs.map(encode).join(',')}]`)}}`;
}

export function encodeError(id: number | undefined, error: WireError): string {
  return id === undefined ? `{"error":${JSON.stringify(error)}}` : `{"id":${id},"error":${JSON.stringify(error)}}`;
}

/** An ephemeral channel event as its push: join, leave, typing or read. */
export function encodeChannelEvent(channel: string, event: ChannelEvent): string {
  const ch = JSON.stringify(channel);
  switch (event.kind) {
    case 'join':
    case 'leave':
      return `{"push":"${event.kind}","channel":${ch},"info":${JSON.stringify(event.info)}}`;
    case 'typing':
      return `{"push":"typing","channel":${ch},"user":${JSON.stringify(event.user)},"typing":${event.typing}}`;
    case 'read':
      return `{"push":"read","channel":${ch},"user":${JSON.stringify(event.user)},"offset":${event.offset}}`;
    case 'emit': {
      // `data` is JSON text already, spliced in like a publication's.
      const info: { user: string; client: string; key?: string } = { user: event.user, client: event.client };
      if (event.key !== undefined) info.key = event.key;
      return `{"push":"emit","channel":${ch},"data":${event.data},"info":${JSON.stringify(info)}}`;
    }
  }
}

export function encodeUnsubscribePush(channel: string, code: number, reason: string, resubscribe: boolean): string {
  return JSON.stringify({ push: 'unsubscribe', channel, code, reason, resubscribe });
}

export function encodeDisconnectPush(code: number, reason: string, reconnect: boolean): string {
  return JSON.stringify({ push: 'disconnect', code, reason, reconnect });
}

export const PING_PUSH = '{"push":"ping"}';
