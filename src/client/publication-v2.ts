import type { Inbound } from './codec.js';

/**
 * Protocol v2's compact publications (docs/protocol.md, Protocol v2) turned back into v1's
 * shape, so the rest of the SDK reads one form: a push `{"p","o","e"?,"d","u"?,"c"?,"k"?}`
 * becomes `{"push":"pub","channel","offset","epoch"?,"data","info"?}`, and a reply's
 * `publications` items `{"o","d",…}` (also inside a connect reply's `subs`) become
 * `{"offset","data","info"?}`. Messages already in
 * v1's shape (a server that chose v1) pass unchanged.
 */
export function fromV2(msg: Inbound): Inbound {
  if (typeof msg.p === 'string' && msg.push === undefined && msg.id === undefined) {
    const out: Inbound = { push: 'pub', channel: msg.p, offset: msg.o, data: msg.d };
    if (msg.e !== undefined) out.epoch = msg.e;
    const info = infoOf(msg);
    if (info) out.info = info;
    return out;
  }
  const result = msg.result as { publications?: unknown; subs?: unknown } | undefined;
  if (msg.id === undefined || result === null || typeof result !== 'object') return msg;
  publicationsFromV2(result);
  // A connect reply's server-side subscriptions: each a subscribe result with its publications.
  if (result.subs !== null && typeof result.subs === 'object') {
    for (const sub of Object.values(result.subs as Record<string, unknown>)) {
      if (sub !== null && typeof sub === 'object') publicationsFromV2(sub as { publications?: unknown });
    }
  }
  return msg;
}

function publicationsFromV2(result: { publications?: unknown }): void {
  if (Array.isArray(result.publications)) result.publications = result.publications.map(publicationFromV2);
}

function publicationFromV2(item: unknown): unknown {
  if (item === null || typeof item !== 'object') return item;
  const pub = item as Record<string, unknown>;
  if (pub.o === undefined || pub.offset !== undefined) return item;
  const out: Record<string, unknown> = { offset: pub.o, data: pub.d };
  const info = infoOf(pub);
  if (info) out.info = info;
  return out;
}

/** `u`/`c`/`k` as v1's `info` (user, client, key); undefined when the server sent no user. */
function infoOf(m: Record<string, unknown>): Record<string, unknown> | undefined {
  if (typeof m.u !== 'string') return undefined;
  const info: Record<string, unknown> = { user: m.u };
  if (m.c !== undefined) info.client = m.c;
  if (m.k !== undefined) info.key = m.k;
  return info;
}
