import type { ClientInfo, HistoryOptions, HistoryQuery, HistoryResult, Publication, StreamPosition } from '../stream/types.js';
import { newEpoch } from '../stream/epoch.js';
import type { HistoryLog } from './history-log.js';

interface StoredPublication extends Publication {
  expiresAt: number;
}

interface Stream {
  epoch: string;
  top: number;
  metaExpiresAt: number;
  /** Oldest first; offsets are contiguous. Empty in a latest-value stream. */
  pubs: StoredPublication[];
  /**
   * A latest-value stream's publications, the newest per key (`options.latest`). A key's new
   * publication is inserted again, so the map's order is offset order, oldest first.
   */
  byKey?: Map<string, StoredPublication>;
}

/** History kept in process memory only: a restart starts every channel on a new epoch. */
export class MemoryHistoryLog implements HistoryLog {
  private readonly streams = new Map<string, Stream>();

  append(channel: string, data: string, info: ClientInfo | undefined, options: HistoryOptions, now: number): StreamPosition {
    const stream = this.stream(channel, options, now);
    stream.top += 1;
    const pub: StoredPublication = { offset: stream.top, data, expiresAt: now + options.ttlMs };
    if (info) pub.info = info;
    if (stream.byKey) keepLatest(stream.byKey, pub, options.size, now);
    else {
      stream.pubs.push(pub);
      trim(stream, options.size, now);
    }
    stream.metaExpiresAt = now + options.metaTtlMs;
    return { offset: stream.top, epoch: stream.epoch };
  }

  read(channel: string, query: HistoryQuery, options: HistoryOptions, now: number): HistoryResult {
    // Reading never creates a stream: only a publication does (reads of random names leave no state).
    const stream = this.streams.get(channel);
    if (!stream || stream.metaExpiresAt <= now) return { position: { offset: 0, epoch: '' }, publications: [], earliest: 1 };
    if (stream.byKey) return readLatest(stream, stream.byKey, query, options.size, now);
    trim(stream, options.size, now);
    const position = { offset: stream.top, epoch: stream.epoch };
    const earliest = stream.pubs[0]?.offset ?? stream.top + 1;
    if (query.sinceOffset === undefined || query.limit <= 0) return { position, publications: [], earliest };
    const from = Math.max(query.sinceOffset + 1, earliest);
    const start = from - earliest;
    const publications: Publication[] = [];
    let bytes = 0;
    for (let i = start; i < stream.pubs.length && publications.length < query.limit; i++) {
      const p = stream.pubs[i]!;
      bytes += Buffer.byteLength(p.data);
      if (query.maxBytes !== undefined && publications.length > 0 && bytes > query.maxBytes) break;
      publications.push(toPublication(p));
    }
    return { position, publications, earliest };
  }

  sweep(now: number): void {
    for (const [channel, stream] of this.streams) {
      if (stream.metaExpiresAt <= now) this.streams.delete(channel);
      else if (stream.byKey) dropExpiredKeys(stream.byKey, now);
      else dropExpired(stream, now);
    }
  }

  close(): void {
    this.streams.clear();
  }

  private stream(channel: string, options: HistoryOptions, now: number): Stream {
    let stream = this.streams.get(channel);
    if (!stream || stream.metaExpiresAt <= now) {
      stream = { epoch: newEpoch(), top: 0, metaExpiresAt: now + options.metaTtlMs, pubs: [] };
      if (options.latest) stream.byKey = new Map();
      this.streams.set(channel, stream);
    }
    return stream;
  }
}

function trim(stream: Stream, size: number, now: number): void {
  const excess = stream.pubs.length - size;
  if (excess > 0) stream.pubs.splice(0, excess);
  dropExpired(stream, now);
}

function dropExpired(stream: Stream, now: number): void {
  let n = 0;
  while (n < stream.pubs.length && stream.pubs[n]!.expiresAt <= now) n++;
  if (n > 0) stream.pubs.splice(0, n);
}

/** `pub` replaces the previous publication of its key; past `size` keys, the least recently changed go. */
function keepLatest(byKey: Map<string, StoredPublication>, pub: StoredPublication, size: number, now: number): void {
  const key = pub.info?.key ?? '';
  byKey.delete(key);
  byKey.set(key, pub);
  for (const [k] of byKey) {
    if (byKey.size <= size) break;
    byKey.delete(k);
  }
  dropExpiredKeys(byKey, now);
}

function dropExpiredKeys(byKey: Map<string, StoredPublication>, now: number): void {
  for (const [k, p] of byKey) {
    if (p.expiresAt > now) break;
    byKey.delete(k);
  }
}

/** A read of a latest-value stream: the held publications after `sinceOffset` (offsets have gaps). */
function readLatest(
  stream: Stream,
  byKey: Map<string, StoredPublication>,
  query: HistoryQuery,
  size: number,
  now: number,
): HistoryResult {
  dropExpiredKeys(byKey, now);
  // A configured size lowered since: the least recently changed keys beyond it count as gone.
  let over = byKey.size - size;
  const position = { offset: stream.top, epoch: stream.epoch };
  const publications: Publication[] = [];
  let earliest = stream.top + 1;
  let bytes = 0;
  for (const p of byKey.values()) {
    if (over-- > 0) continue;
    if (earliest > stream.top) earliest = p.offset;
    if (query.sinceOffset === undefined || publications.length >= query.limit) break;
    if (p.offset <= query.sinceOffset) continue;
    bytes += Buffer.byteLength(p.data);
    if (query.maxBytes !== undefined && publications.length > 0 && bytes > query.maxBytes) break;
    publications.push(toPublication(p));
  }
  return { position, publications, earliest };
}

function toPublication(p: StoredPublication): Publication {
  return p.info ? { offset: p.offset, data: p.data, info: p.info } : { offset: p.offset, data: p.data };
}
