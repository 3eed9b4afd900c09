const NEWLINE = Buffer.from('\n');

/**
 * Write coalescing: everything queued for a connection within one event-loop turn leaves as
 * one frame, messages joined with the codec's separator (`\n` for JSON, nothing between
 * MessagePack values). The hot path pushes Buffers encoded once per
 * broadcast, so joining is a memcpy, not a re-encode.
 */
export class OutboundQueue {
  private frames: Buffer[] = [];
  private size = 0;

  constructor(private readonly separator: Buffer = NEWLINE) {}

  get bytes(): number {
    return this.size;
  }

  get empty(): boolean {
    return this.frames.length === 0;
  }

  push(frame: Buffer): void {
    this.frames.push(frame);
    this.size += frame.length;
  }

  /**
   * Takes everything queued as one frame, or undefined when nothing is queued. With a
   * `JoinCache`, a queue holding the very same messages as the previous one drained (the usual
   * case in a broadcast: every subscriber of a channel got the same pushes this turn) reuses its
   * joined frame instead of building one per connection.
   */
  drain(cache?: JoinCache): Buffer | undefined {
    const frames = this.frames;
    if (frames.length === 0) return undefined;
    const total = this.size + (frames.length - 1) * this.separator.length;
    this.frames = [];
    this.size = 0;
    if (frames.length === 1) return frames[0];
    if (cache?.frames && cache.separator === this.separator && sameFrames(cache.frames, frames)) return cache.joined;
    const parts: Buffer[] = new Array<Buffer>(frames.length * 2 - 1);
    for (let i = 0; i < frames.length; i++) {
      if (i > 0) parts[i * 2 - 1] = this.separator;
      parts[i * 2] = frames[i]!;
    }
    const joined = Buffer.concat(parts, total);
    if (cache) {
      cache.frames = frames;
      cache.joined = joined;
      cache.separator = this.separator;
    }
    return joined;
  }

  clear(): void {
    this.frames = [];
    this.size = 0;
  }
}

/** The last joined frame of a flush round, and the messages it was made of. */
export interface JoinCache {
  frames: Buffer[] | undefined;
  joined: Buffer | undefined;
  /** The separator the joined frame was made with (one per codec). */
  separator?: Buffer;
}

/** Same messages (the same Buffer objects, encoded once per broadcast) in the same order. */
function sameFrames(a: Buffer[], b: Buffer[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface Flushable {
  flush(cache: JoinCache): void;
}

/** Flushes every connection with queued output once per event-loop turn. */
export class FlushScheduler {
  private pending: Flushable[] = [];
  private scheduled = false;

  schedule(target: Flushable): void {
    this.pending.push(target);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  private readonly run = (): void => {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    const cache: JoinCache = { frames: undefined, joined: undefined };
    for (const target of batch) target.flush(cache);
  };
}
