/**
 * The data shared by every layer: stream positions, publications, history queries and
 * ephemeral channel events. Pure types, importing nothing, so storage modules and the
 * protocol can use them without importing each other.
 */
export interface StreamPosition {
  /** Offset of the latest publication in the stream; 0 when the stream is empty. */
  offset: number;
  /** Names the history instance; '' when the channel keeps no history. */
  epoch: string;
}

/** Who published, when a client did. */
export interface ClientInfo {
  user: string;
  client: string;
  /**
   * The publisher's conflation key in a latest-value namespace (`delivery: "latest"`): only the
   * newest publication per key matters. Absent: one key per channel.
   */
  key?: string;
}

export interface Publication {
  offset: number;
  /** JSON text of the payload. */
  data: string;
  info?: ClientInfo;
}

export interface HistoryOptions {
  /** How many publications the stream keeps; 0 keeps none (offsets are then 0). */
  size: number;
  /** How long a publication stays in the stream, in milliseconds. */
  ttlMs: number;
  /**
   * How long the stream position (offset and epoch) outlives the last publication, in
   * milliseconds. Must be at least `ttlMs`.
   */
  metaTtlMs: number;
  /**
   * A latest-value stream (`delivery: "latest"`): it holds only the newest publication per
   * conflation key (`info.key`, or one per channel without a key), each kept however long ago it
   * came (within `ttlMs`), and at most `size` keys (the least recently changed go first). Offsets
   * still count every publication, so the held ones have gaps between them.
   */
  latest?: boolean;
}

export interface HistoryQuery {
  /** Return publications with offsets greater than this one. Omitted: only the position. */
  sinceOffset?: number;
  /** At most this many publications, oldest first. */
  limit: number;
  /**
   * At most about this many bytes of publication data: the read stops before the publication
   * that would pass it, but always returns at least one when any is due. Omitted: no bound.
   */
  maxBytes?: number;
}

export interface HistoryResult {
  /** The stream top. A stream that does not exist (never published, or expired) reads `{0, ''}`. */
  position: StreamPosition;
  publications: Publication[];
  /**
   * The lowest offset still held (1 when nothing was trimmed yet, top + 1 for an empty
   * stream). A caller asking for `sinceOffset` < `earliest - 1` has lost publications.
   */
  earliest: number;
}

/**
 * An ephemeral channel event pushed to every node's subscribers of the channel and never
 * stored: presence joins and leaves, typing signals, read receipts.
 */
export type ChannelEvent =
  | { kind: 'join' | 'leave'; info: ClientInfo & { connInfo?: unknown } }
  | { kind: 'typing'; user: string; client: string; typing: boolean }
  | { kind: 'read'; user: string; offset: number }
  /** An ephemeral client event (`emit`): `data` is JSON text; `key` (optional) conflates. */
  | { kind: 'emit'; user: string; client: string; key?: string; data: string };
