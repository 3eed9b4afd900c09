import type { Logger } from 'pino';
import {
  isLossy,
  type Broker,
  type BrokerEventHandler,
  type ControlCommand,
  type HealthChecker,
  type LossyDelivery,
  type PublishOptions,
  type PublishResult,
} from '../broker/broker.js';
import type { ChannelEvent, HistoryOptions, HistoryQuery, HistoryResult, Publication } from '../stream/types.js';
import { PgHistory } from './history.js';
import { PgListener } from './listener.js';
import type { PgPool } from './pool.js';

export interface DurableChannelsBrokerOptions {
  inner: Broker;
  pool: PgPool;
  schema: string;
  logger: Logger;
  /** Which channels keep their history in PostgreSQL. */
  isDurable: (channel: string) => boolean;
  now?: () => number;
  sweepIntervalMs?: number;
}

const DEFAULT_IDEMPOTENCY_TTL_MS = 120_000;
/** NOTIFY payloads are limited to 8000 bytes; above this the data is read back from the table. */
const MAX_INLINE_BYTES = 7_000;

interface Wire {
  c: string;
  o: number;
  e: string;
  d?: string | null;
  i?: Publication['info'] | null;
}

/**
 * A Broker that keeps some channels (the notifications, when the store is PostgreSQL) in
 * PostgreSQL and passes every other call to the inner broker (memory, SQLite or Redis).
 *
 * For a durable channel, publish is one statement (`switchboard_history_append`, one transaction): the idempotency check, the offset
 * increment under the stream row's lock, the history append and a `pg_notify` carrying the
 * publication. NOTIFY is sent at commit and in commit order, so every node's LISTEN connection
 * receives the channel's publications in offset order; a node whose LISTEN connection broke
 * misses some, which the node's position check (this broker reports lossy delivery) and the
 * next publication's gap reveal, and recovery reads them back from the table. A Redis FLUSHALL
 * or restart therefore loses none of them.
 */
export class DurableChannelsBroker implements Broker, LossyDelivery, HealthChecker {
  readonly lossyDelivery = true as const;
  private readonly log: PgHistory;
  private readonly notifyChannel: string;
  private readonly now: () => number;
  private handler: BrokerEventHandler | undefined;
  private readonly listener: PgListener;
  private readonly sweeper: NodeJS.Timeout;
  private delivering: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: DurableChannelsBrokerOptions) {
    this.log = new PgHistory(options.schema);
    this.notifyChannel = `${options.schema}.switchboard_pubs`;
    this.listener = new PgListener({
      pool: options.pool,
      channel: this.notifyChannel,
      logger: options.logger,
      onNotification: (payload) => this.received(payload),
    });
    this.now = options.now ?? Date.now;
    this.sweeper = setInterval(() => void this.log.sweep(options.pool, this.now()).catch(() => undefined), options.sweepIntervalMs ?? 60_000);
    this.sweeper.unref();
  }

  /** Opens the LISTEN connection (again after every loss, with backoff). */
  start(): void {
    this.listener.start();
  }

  setHandler(handler: BrokerEventHandler): void {
    this.handler = handler;
    this.options.inner.setHandler(handler);
  }

  async publish(channel: string, data: string, options: PublishOptions): Promise<PublishResult> {
    // Without history there is nothing to keep: the inner broker carries it as any other channel.
    if (!this.options.isDurable(channel) || options.history.size <= 0) return this.options.inner.publish(channel, data, options);
    const key = options.idempotencyKey;
    return this.log.append(
      this.options.pool,
      channel,
      data,
      options.info,
      options.history,
      key !== undefined ? { key, ttlMs: options.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS } : undefined,
      this.now(),
      { channel: this.notifyChannel, inline: Buffer.byteLength(data) + Buffer.byteLength(channel) <= MAX_INLINE_BYTES },
    );
  }

  publishEvent(channel: string, event: ChannelEvent): Promise<void> {
    return this.options.inner.publishEvent(channel, event);
  }

  publishControl(command: ControlCommand): Promise<void> {
    return this.options.inner.publishControl(command);
  }

  /**
   * Publications of durable channels reach every node through its LISTEN connection; the inner
   * broker still carries their channel events (join, leave, typing, read), so interest goes there.
   */
  subscribe(channel: string): Promise<void> {
    return this.options.inner.subscribe(channel);
  }

  unsubscribe(channel: string): Promise<void> {
    return this.options.inner.unsubscribe(channel);
  }

  history(channel: string, query: HistoryQuery, options: HistoryOptions): Promise<HistoryResult> {
    if (!this.options.isDurable(channel)) return this.options.inner.history(channel, query, options);
    if (options.size <= 0) return Promise.resolve({ position: { offset: 0, epoch: '' }, publications: [], earliest: 1 });
    return this.log.read(this.options.pool, channel, query, options, this.now());
  }

  async restartEpoch(channel: string, epoch: string): Promise<void> {
    if (this.options.isDurable(channel)) {
      await this.options.pool.transaction((tx) => this.log.restartEpoch(tx, channel, epoch));
      return;
    }
    const inner = this.options.inner;
    if (isLossy(inner)) await inner.restartEpoch(channel, epoch);
  }

  async healthy(): Promise<boolean> {
    const inner = this.options.inner as Broker & Partial<HealthChecker>;
    if (inner.healthy && !(await inner.healthy())) return false;
    try {
      await this.options.pool.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    try {
      await this.options.inner.close();
    } finally {
      await this.listener.close();
    }
  }

  /** One NOTIFY: delivered in arrival order (a payload without data waits for its read). */
  private received(payload: string | undefined): void {
    let wire: Wire;
    try {
      wire = JSON.parse(payload ?? '') as Wire;
    } catch {
      return;
    }
    this.delivering = this.delivering
      .then(async () => {
        const pub: Publication | undefined =
          typeof wire.d === 'string'
            ? { offset: wire.o, data: wire.d, ...(wire.i ? { info: wire.i } : {}) }
            : await this.log.one(this.options.pool, wire.c, wire.o);
        // A publication not read back is a gap the position check finds and recovery fills.
        if (pub && !this.closed) this.handler?.onPublication(wire.c, pub, wire.e);
      })
      .catch((err: unknown) => this.options.logger.warn({ err: (err as Error).message }, 'durable publication delivery failed'));
  }
}
