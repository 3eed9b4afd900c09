import { ClientErrorCode } from './constants.js';
import { ClientError } from './errors.js';

/** Where a publish has got to: accepted in order (`seq`), with the key that makes it idempotent. */
export interface QueuedPublish {
  /** Order of acceptance on this client; the queue keeps publishes in this order. */
  readonly seq: number;
  readonly channel: string;
  readonly data: unknown;
  readonly idempotencyKey: string;
  /** The conflation key (latest-value namespaces). */
  readonly key?: string;
  /** Times it was sent; more than 1 means a retry with the same key. */
  attempts: number;
  resolve(result: { offset: number; epoch: string }): void;
  reject(err: ClientError): void;
}

/**
 * The bounded queue of publishes waiting for a connection (or for a free slot in the window of
 * publishes in flight). New publishes beyond `capacity` are refused with QUEUE_FULL; publishes
 * that come back from a lost connection are always taken back, in their original order.
 */
export class OfflineQueue {
  private items: QueuedPublish[] = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new ClientError(ClientErrorCode.BAD_ARGUMENT, 'offlineQueueSize: expected an integer >= 0');
    }
  }

  get size(): number {
    return this.items.length;
  }

  /** Adds a new publish at the end; throws QUEUE_FULL when `capacity` are waiting. */
  push(item: QueuedPublish): void {
    if (this.items.length >= this.capacity) {
      throw new ClientError(
        ClientErrorCode.QUEUE_FULL,
        `publish: the offline queue is full (${this.capacity} publishes waiting); retry later or raise offlineQueueSize`,
        { temporary: true },
      );
    }
    this.items.push(item);
  }

  /** Takes back a publish that was sent but not acknowledged, at its place by `seq`. */
  requeue(item: QueuedPublish): void {
    let i = this.items.length;
    while (i > 0 && this.items[i - 1]!.seq > item.seq) i--;
    this.items.splice(i, 0, item);
  }

  shift(): QueuedPublish | undefined {
    return this.items.shift();
  }

  /** Removes and returns everything. */
  drain(): QueuedPublish[] {
    const all = this.items;
    this.items = [];
    return all;
  }
}

/**
 * Idempotency keys: a random per-client prefix and a counter. Uses `crypto.getRandomValues`,
 * which (unlike `randomUUID`) browsers provide outside secure contexts too.
 */
export function keyGenerator(): () => string {
  const bytes = new Uint8Array(12);
  const c = (globalThis as { crypto?: { getRandomValues?(a: Uint8Array): Uint8Array } }).crypto;
  if (c?.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  let prefix = '';
  for (const b of bytes) prefix += b.toString(16).padStart(2, '0');
  let n = 0;
  return () => `sb-${prefix}-${(++n).toString(36)}`;
}
