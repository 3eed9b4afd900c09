/** How often a connection holding latest values checks its socket, besides the drain event. */
const POLL_MS = 50;

/** What the outbox needs of its connection. */
export interface LatestHost {
  /** Outbound bytes queued: the connection's queue plus the socket's buffer. */
  queued(): number;
  isClosed(): boolean;
  /** Queues a frame already in the connection's codec and schedules a flush. */
  queueEncoded(frame: Buffer): void;
  /** Calls `cb` once the socket's buffered bytes have been written, when the transport can tell. */
  onDrain?(cb: () => void): void;
  /** A frame was dropped: `maxEntries` keys were held already. */
  dropped(): void;
}

/**
 * The pending latest values of one slow connection: latest-value publications (per channel and
 * publisher-given key) and client events (per channel, sender and key) that came while its
 * socket was backed up past `bound` bytes. Only the newest frame per key is kept, in the order
 * the keys last changed; past `maxEntries` keys a new key is dropped. They are moved to the
 * connection's queue as the socket drains, never past `bound`. Nothing here disconnects.
 */
export class LatestOutbox {
  private readonly entries = new Map<string, Buffer>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: LatestHost,
    /** Queued bytes above which frames are held (half the queue cap). */
    readonly bound: number,
    private readonly maxEntries: number,
  ) {}

  /** Whether frames are held: a new one of any key must be held too, or it would overtake them. */
  get holding(): boolean {
    return this.entries.size > 0;
  }

  /** Keeps `frame` (in the connection's codec) as the newest of `key`, until the socket drains. */
  hold(key: string, frame: Buffer): void {
    if (!this.entries.delete(key) && this.entries.size >= this.maxEntries) {
      this.host.dropped();
      return;
    }
    this.entries.set(key, frame);
    this.awaitDrain();
  }

  /**
   * Drops what is held of `channel` (its publications, `p<channel>\0…`, and client events,
   * `e<channel>\0…`): after an unsubscribe nothing of the channel may follow its reply.
   */
  forget(channel: string): void {
    const pubs = `p${channel}\0`;
    const events = `e${channel}\0`;
    for (const key of this.entries.keys()) if (key.startsWith(pubs) || key.startsWith(events)) this.entries.delete(key);
    if (this.entries.size === 0) this.clear();
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.entries.clear();
  }

  private awaitDrain(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(this.release, POLL_MS);
    this.host.onDrain?.(this.release);
  }

  /** Moves held frames to the queue, oldest change first, while it stays under the bound. */
  private readonly release = (): void => {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.host.isClosed()) return;
    for (const [key, frame] of this.entries) {
      if (this.host.queued() > this.bound) break;
      this.entries.delete(key);
      this.host.queueEncoded(frame);
    }
    if (this.entries.size > 0) this.awaitDrain();
  };
}
