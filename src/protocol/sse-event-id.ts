import type { StreamPosition } from '../stream/types.js';

/**
 * SSE event ids carry the client's position in every channel of its stream, so the browser's
 * `Last-Event-ID` recovers all of them on reconnect: `1:` then `epoch.offset` per channel,
 * comma-separated, in the order the channels appear in the request URL.
 * Example for two channels: `1:xY3k_9aB.41,.0` (the second keeps no history).
 */
const VERSION = '1:';
/** Longest Last-Event-ID accepted; anything longer is ignored. */
export const MAX_EVENT_ID_LENGTH = 8192;
const PART = /^([A-Za-z0-9_-]{0,32})\.(0|[1-9][0-9]{0,14})$/;

export function encodeEventId(positions: readonly StreamPosition[]): string {
  let s = VERSION;
  for (let i = 0; i < positions.length; i++) {
    if (i > 0) s += ',';
    s += `${positions[i]!.epoch}.${positions[i]!.offset}`;
  }
  return s;
}

/**
 * Parses a Last-Event-ID strictly: the version, exactly `channels` parts, each a bounded epoch
 * and a bounded non-negative offset. Anything else gives undefined (treated as "cannot recover").
 */
export function parseEventId(id: string, channels: number): StreamPosition[] | undefined {
  if (id.length > MAX_EVENT_ID_LENGTH || !id.startsWith(VERSION)) return undefined;
  const parts = id.slice(VERSION.length).split(',');
  if (parts.length !== channels) return undefined;
  const positions: StreamPosition[] = [];
  for (const part of parts) {
    const m = PART.exec(part);
    if (!m) return undefined;
    positions.push({ epoch: m[1]!, offset: Number(m[2]) });
  }
  return positions;
}
