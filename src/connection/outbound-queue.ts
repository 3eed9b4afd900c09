const NEWLINE = Buffer.from('\n');

/**
 * Write coalescing: everything queued for a connection within one event-loop turn leaves as
 * one frame, messages joined with `\n`. The hot path pushes Buffers encoded once per
 * broadcast, so joining is a memcpy, not a re-encode.
 */
export class OutboundQueue {
  private frames: Buffer[] = [];
  private size = 0;

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

  /** Takes everything queued as one frame, or undefined when nothing is queued. */
  drain(): Buffer | undefined {
    const frames = this.frames;
    if (frames.length === 0) return undefined;
    const total = this.size + frames.length - 1;
    this.frames = [];
    this.size = 0;
    if (frames.length === 1) return frames[0];
    const parts: Buffer[] = new Array<Buffer>(frames.length * 2 - 1);
    for (let i = 0; i < frames.length; i++) {
      if (i > 0) parts[i * 2 - 1] = NEWLINE;
      parts[i * 2] = frames[i]!;
    }
    return Buffer.concat(parts, total);
  }

  clear(): void {
    this.frames = [];
    this.size = 0;
  }
}

/** Flushes every connection with queued output once per event-loop turn. */
export class FlushScheduler {
  private pending: Array<{ flush(): void }> = [];
  private scheduled = false;

  schedule(target: { flush(): void }): void {
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
    for (const target of batch) target.flush();
  };
}
