/** How often a connection holding latest values checks its socket, besides the drain event. */
const POLL_MS = 50;

/**
 * Bytes the socket may hold unwritten (not taken by the kernel) before latest values are held
 * rather than queued, and the most moved to the queue per turn when they are released: at
 * most about this much stale state waits ahead of the newest (64 KiB, about a quarter second
 * of a 200-player game room's positions), instead of a backlog of up to half the queue cap.
 * What is queued within one turn does not count: a burst is not a slow socket.
 */
export const LATEST_SOCKET_BYTES = 64 * 1024;

/** What the outbox needs of its connection. */
export interface LatestHost {
  /** Outbound bytes queued: the connection's queue plus the socket's buffer. */
  queued(): number;
  /** Bytes the socket holds that the kernel has not taken yet. */
  socketBuffered(): number;
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
 * connection was backed up (see mustHold). Only the newest frame per key is kept, in the order
 * the keys last changed; past `maxEntries` keys a new key is dropped. They are moved to the
 * connection's queue as the socket drains, never past `bound`. Nothing here disconnects.
 */
export class LatestOutbox {
  private readonly entries = new Map<string, Buffer>();
  private timer: NodeJS.Timeout | undefined;
  private nextTurn: NodeJS.Immediate | undefined;

  constructor(
    private readonly host: LatestHost,
    /** Queued bytes (queue and socket) above which frames are held (half the queue cap). */
    readonly bound: number,
    private readonly maxEntries: number,
  ) {}

  /** Whether frames are held: a new one of any key must be held too, or it would overtake them. */
  get holding(): boolean {
    return this.entries.size > 0;
  }

  /** Whether a frame of `bytes` must be held: frames are held already, or the connection is backed up. */
  mustHold(bytes: number): boolean {
    return this.entries.size > 0 || this.host.queued() + bytes > this.bound || this.host.socketBuffered() > LATEST_SOCKET_BYTES;
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
    clearImmediate(this.nextTurn);
    this.nextTurn = undefined;
    this.entries.clear();
  }

  private awaitDrain(): void {
    if (this.timer !== undefined || this.nextTurn !== undefined) return;
    this.timer = setTimeout(this.release, POLL_MS);
    this.host.onDrain?.(this.release);
  }

  /**
   * Moves held frames to the queue, oldest change first, while the connection is not backed up
   * and at most LATEST_SOCKET_BYTES per turn (the rest the next turn, after that flush).
   */
  private readonly release = (): void => {
    clearTimeout(this.timer);
    this.timer = undefined;
    clearImmediate(this.nextTurn);
    this.nextTurn = undefined;
    if (this.host.isClosed()) return;
    let moved = 0;
    for (const [key, frame] of this.entries) {
      if (this.host.queued() > this.bound || this.host.socketBuffered() > LATEST_SOCKET_BYTES) break;
      if (moved >= LATEST_SOCKET_BYTES) {
        this.nextTurn = setImmediate(this.release);
        return;
      }
      this.entries.delete(key);
      moved += frame.length;
      this.host.queueEncoded(frame);
    }
    if (this.entries.size > 0) this.awaitDrain();
  };
}
