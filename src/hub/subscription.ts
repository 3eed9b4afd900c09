import type { ResolvedChannel } from '../channels/channels.js';
import type { Publication } from '../stream/types.js';
import type { PublicationFrames } from './publication-frames.js';
import type { Session } from './session.js';

/** A live publication that arrived while the subscription was still catching up. */
export interface BufferedPublication {
  pub: Publication;
  frames: PublicationFrames;
  epoch: string;
}

/**
 * One session's subscription to one channel. `offset` and `epoch` are always where the client
 * stands: what it has been sent up to (recovered or live). While it catches up (`buffered` is
 * an array) live publications wait in the buffer, bounded in bytes: past the bound it is
 * dropped and the catch-up reads them from history instead (`overflows` counts that).
 */
export class Subscription {
  buffered: BufferedPublication[] | null = [];
  bufferedBytes = 0;
  overflows = 0;
  offset = 0;
  epoch = '';
  /** The stream top seen by the last position check while this subscription was behind it. */
  behindTop = 0;
  /** Where this subscription stood at the last position check that found it above the top. */
  aheadOf = 0;
  /** The highest offset covered by a history read of this subscription (recovered or skipped). */
  historyTop = 0;
  /**
   * Whether a publication above `historyTop` came through the broker since. Its delivery is in
   * order on one connection, so every publication at or below `historyTop` still on its way has
   * arrived by then: a later one at or below the position means the stream went back.
   */
  pastHistory = false;
  /** When `historyTop` was read (ms): a covered publication arrives soon after, or not at all. */
  readAt = 0;

  constructor(
    readonly session: Session,
    readonly channel: ResolvedChannel,
  ) {}

  get active(): boolean {
    return this.buffered === null;
  }

  /** Buffers a live publication while catching up; past `maxBytes` (with the session's queue) the buffer is dropped. */
  buffer(item: BufferedPublication, maxBytes: number): void {
    if (!this.buffered) return;
    const bytes = item.frames.frame(this.session.protocolVersion).length;
    if (this.bufferedBytes + bytes + this.session.queuedBytes > maxBytes) {
      this.buffered = [];
      this.bufferedBytes = 0;
      this.overflows += 1;
      return;
    }
    this.buffered.push(item);
    this.bufferedBytes += bytes;
  }
}
