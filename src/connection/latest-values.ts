/**
 * The pending latest values of one slow connection: latest-value publications (per channel and
 * publisher-given key) and client events (per channel, sender and key) that came while its
 * socket was backed up. Only the newest frame per key is kept, in the order the keys last
 * changed; past `maxEntries` keys a new key is dropped. Nothing here ever disconnects.
 */
export class LatestValues {
  private entries = new Map<string, Buffer>();
  /** Frames replaced by a newer one of the same key, and frames dropped for want of room. */
  replaced = 0;
  dropped = 0;

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** Keeps `frame` as the newest of `key` (false: dropped, too many keys). */
  offer(key: string, frame: Buffer): boolean {
    if (this.entries.delete(key)) this.replaced += 1;
    else if (this.entries.size >= this.maxEntries) {
      this.dropped += 1;
      return false;
    }
    this.entries.set(key, frame);
    return true;
  }

  /** Hands frames to `send`, oldest change first, while `room()` says so; true when some remain. */
  drainInto(send: (frame: Buffer) => void, room: () => boolean): boolean {
    for (const [key, frame] of this.entries) {
      if (!room()) return true;
      this.entries.delete(key);
      send(frame);
    }
    return false;
  }

  clear(): void {
    this.entries.clear();
  }
}
