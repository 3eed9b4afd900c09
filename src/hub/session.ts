import type { IncomingHttpHeaders } from 'node:http';
import type { Identity } from '../auth/verifier.js';
import type { CodecName, ProtocolVersion } from '../codec/codec.js';
import type { CloseCodeValue } from '../protocol/close-codes.js';
import type { Publication } from '../stream/types.js';
import type { PublicationFrames } from './publication-frames.js';
import type { Subscription } from './subscription.js';

/**
 * Kinds of server pushes besides publications. `resubscribe` is an unsubscribe push that asks
 * the client to resubscribe at once with recovery (code 2001).
 */
export type PushKind = 'join' | 'leave' | 'typing' | 'read' | 'unsubscribe' | 'resubscribe' | 'emit' | 'doc';

/**
 * What the Node sees of one client session, whatever its transport. The Node never touches
 * sockets or writes replies itself: it hands a session encoded frames and the session queues
 * them. Implemented by connection/Connection (WebSocket) and connection/SseConnection.
 */
export interface Session {
  readonly id: string;
  /** The verified user; '' for an anonymous session. */
  readonly user: string;
  readonly identity: Identity | undefined;
  readonly transportKind: 'websocket' | 'sse';
  /** The frame codec a WebSocket session chose (JSON when absent). */
  readonly codec?: CodecName;
  /** The protocol version a WebSocket session chose (1 when absent; SSE is 1). */
  readonly protocolVersion?: ProtocolVersion;
  readonly headers: IncomingHttpHeaders;
  /** The `name` the client gave in `connect` (informational), if any. */
  readonly clientName: string | undefined;
  readonly closed: boolean;
  /** Outbound bytes queued for this session: its own queue plus the socket's buffer. */
  readonly queuedBytes: number;
  /** Queues a publication push of one of its subscriptions (`frames` encodes it once per version for all). */
  deliver(sub: Subscription, pub: Publication, frames: PublicationFrames): void;
  /**
   * Queues a server push other than a publication. `latestKey` (client events): under
   * backpressure only the newest push per key is kept, and past limits.maxLatestEntries keys
   * the push is dropped; it never counts towards a disconnect.
   */
  push(kind: PushKind, frame: Buffer, latestKey?: string): void;
  /** The session's subscription of `channel` ended: nothing of it may be sent any more. */
  unsubscribed?(channel: string): void;
  /** Heartbeat from the Node's one timer: deadlines, pings, token expiry, sustained lag. */
  beat(now: number): void;
  /** Closes the session (it tells the client why, then releases itself from the Node). */
  close(code: CloseCodeValue, reason?: string): void;
}

/** How a subscribe is answered on one transport: a reply frame (WebSocket) or SSE events. */
export interface SubscribeAnswer {
  /**
   * The first answer, sent once: where the client stands after it (`position`), whether it
   * recovered, and the first page of missed publications.
   */
  opened(sub: Subscription, result: OpenedResult, publications: readonly Publication[]): void;
  /** A later page of missed publications, in order, before live ones. */
  page(sub: Subscription, publications: readonly Publication[]): void;
}

export interface OpenedResult {
  position: { offset: number; epoch: string };
  recoverable: boolean;
  /** Present when the client asked to recover (`since`). */
  recovered?: boolean;
  /**
   * Present when a recovery continues after this answer: the stream top it recovers up to. The
   * publications up to it that follow as pushes are recovered ones.
   */
  top?: { offset: number; epoch: string };
  /**
   * Present (true) in a latest-value namespace: the publications are the latest per key, not a
   * replay, and `position` is the stream top (or, when more keys follow in pages, the last
   * offset of this first page, with `top`).
   */
  latest?: true;
}
