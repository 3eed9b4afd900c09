import type { Backoff } from './backoff.js';
import { utf8Length } from './codec.js';
import { ClientErrorCode } from './constants.js';
import { ClientError } from './errors.js';
import { keyGenerator, type OfflineQueue, type QueuedPublish } from './offline-queue.js';
import type { RateLimiter } from './rate-limiter.js';
import type { ReplyCallback } from './reply-table.js';
import type { PublishOptions, PublishResult, StreamPosition } from './types.js';
import { badArgument, checkChannel } from './validation.js';

/** What the publish pipeline needs from its client. */
export interface PublishHost {
  readonly connected: boolean;
  /** Sends on the current connection, without a reply timeout (the pipeline paces publishes itself). */
  send(method: string, params: unknown, callback: ReplyCallback): void;
  reportError(err: ClientError): void;
}

export interface PublishPipelineOptions {
  /** Where publishes wait for the connection, a free slot in the window or the command rate. */
  queue: OfflineQueue;
  /** Publishes sent and not yet acknowledged, at most. */
  maxInflight: number;
  /** Largest command the server takes; a bigger publish is refused before it is queued. */
  maxMessageBytes: number;
  /** The client's command pace (shared with its other commands); undefined: no pacing. */
  rate: RateLimiter | undefined;
  /**
   * The pause before sending again after a temporary refusal. Shared with the client's
   * subscribe retries; every acknowledged publish resets it.
   */
  retryBackoff: Backoff;
}

/**
 * Gets every publish applied exactly once: gives it an idempotency key, sends it in order within
 * the window of publishes in flight and the command rate, queues it while it cannot go, takes it
 * back with the same key when its acknowledgement was lost (a dropped connection) or the server
 * refused it for now (rate-limited, broker unavailable), and settles its promise with the ack.
 */
export class PublishPipeline {
  private readonly queue: OfflineQueue;
  private readonly inflight = new Map<number, QueuedPublish>();
  private readonly maxInflight: number;
  private readonly maxMessageBytes: number;
  private readonly rate: RateLimiter | undefined;
  private readonly retryBackoff: Backoff;
  private readonly nextKey = keyGenerator();
  private pumpTimer: ReturnType<typeof setTimeout> | undefined;
  private seq = 0;
  private paused = false;

  constructor(
    private readonly host: PublishHost,
    options: PublishPipelineOptions,
  ) {
    this.queue = options.queue;
    this.maxInflight = options.maxInflight;
    this.maxMessageBytes = options.maxMessageBytes;
    this.rate = options.rate;
    this.retryBackoff = options.retryBackoff;
  }

  /** See `SwitchboardClient.publish`. */
  publish(channel: string, data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    return new Promise((resolve, reject) => {
      checkChannel(channel);
      const key = options.idempotencyKey ?? this.nextKey();
      if (typeof key !== 'string' || key.length === 0 || key.length > 128) {
        throw badArgument('publish: idempotencyKey must be a string of 1 to 128 characters');
      }
      let line: string | undefined;
      try {
        line = JSON.stringify({ id: Number.MAX_SAFE_INTEGER, method: 'publish', params: { channel, data, idempotencyKey: key } });
      } catch (err) {
        throw badArgument(`publish: data is not JSON: ${(err as Error).message}`);
      }
      if (data === undefined || JSON.stringify(data) === undefined) throw badArgument('publish: data is not JSON');
      const bytes = utf8Length(line);
      if (bytes > this.maxMessageBytes) {
        throw new ClientError(
          ClientErrorCode.MESSAGE_TOO_BIG,
          `publish: ${bytes} bytes is over maxMessageBytes (${this.maxMessageBytes}); the server would close the connection`,
        );
      }
      if (options.key !== undefined && (typeof options.key !== 'string' || options.key.length === 0 || options.key.length > 128)) {
        throw badArgument('publish: key must be a string of 1 to 128 characters');
      }
      const item: QueuedPublish = { seq: ++this.seq, channel, data, idempotencyKey: key, attempts: 0, resolve, reject };
      if (options.key !== undefined) (item as { key?: string }).key = options.key;
      if (this.queue.size === 0 && this.canSend()) {
        this.send(item);
      } else {
        this.queue.push(item); // throws QUEUE_FULL
        this.pump();
      }
    });
  }

  /** Publishes waiting to be sent plus those sent and not yet acknowledged. */
  get pending(): number {
    return this.queue.size + this.inflight.size;
  }

  /** Rejects (with CLOSED) every publish still waiting to be sent. Those in flight are unaffected. */
  clearQueue(): void {
    for (const item of this.queue.drain()) item.reject(ClientError.closed('publish: the offline queue was cleared'));
  }

  /** The connection is up and the subscriptions were sent: flush the queue behind them. */
  connected(): void {
    this.pump();
  }

  /** The connection is gone: publishes in flight (maybe applied, ack lost) go back in line, same key. */
  transportLost(): void {
    for (const item of this.inflight.values()) this.queue.requeue(item);
    this.inflight.clear();
  }

  /** Sends queued publishes in order while the window and the command rate allow. */
  private pump(): void {
    while (this.queue.size > 0 && this.canSend()) this.send(this.queue.shift()!);
    if (this.queue.size > 0 && this.host.connected && !this.paused && this.inflight.size < this.maxInflight && this.rate) {
      // Waiting for the command rate.
      if (this.pumpTimer === undefined) {
        this.pumpTimer = setTimeout(
          () => {
            this.pumpTimer = undefined;
            this.pump();
          },
          Math.max(1, this.rate.waitMs()),
        );
      }
    }
  }

  /** Whether one more publish may go now (takes a command-rate token if so). */
  private canSend(): boolean {
    if (!this.host.connected || this.paused || this.inflight.size >= this.maxInflight) return false;
    return this.rate ? this.rate.tryTake() : true;
  }

  private send(item: QueuedPublish): void {
    item.attempts += 1;
    this.inflight.set(item.seq, item);
    const params: Record<string, unknown> = { channel: item.channel, data: item.data, idempotencyKey: item.idempotencyKey };
    if (item.key !== undefined) params.key = item.key;
    this.host.send('publish', params, (err, result) => {
      if (this.inflight.get(item.seq) !== item) return;
      this.inflight.delete(item.seq);
      if (!err) {
        this.retryBackoff.reset();
        const r = result as StreamPosition;
        item.resolve({ offset: r?.offset ?? 0, epoch: r?.epoch ?? '' });
        this.pump();
      } else if (err.code === ClientErrorCode.DISCONNECTED) {
        // Sent, maybe applied, ack lost: back in line with the same key.
        this.queue.requeue(item);
      } else if (err.fromServer && err.temporary) {
        // Rate-limited or the broker is unavailable: the same key again, after a pause.
        this.queue.requeue(item);
        this.pause(err);
      } else {
        item.reject(err);
        this.pump();
      }
    });
  }

  private pause(err: ClientError): void {
    if (this.paused) return;
    this.host.reportError(err);
    this.paused = true;
    setTimeout(() => {
      this.paused = false;
      this.pump();
    }, this.retryBackoff.next());
  }
}
