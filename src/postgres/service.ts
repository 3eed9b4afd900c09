import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import type { HubOptions } from '../config/options.js';
import { HubError } from '../protocol/errors.js';
import { DurableChannelsBroker } from './durable-broker.js';
import { migrate } from './migrations.js';
import { OutboxConsumer, type OutboxConsumerOptions, type OutboxSink } from './outbox.js';
import { PgPool } from './pool.js';
import { PgStore } from './store.js';

/** Channels whose history lives in PostgreSQL when the store is PostgreSQL: every user's notifications. */
export function isDurableChannel(channel: string): boolean {
  return channel.startsWith('notifications:');
}

/**
 * Everything of one hub that talks to PostgreSQL: the bounded pool, the migrations (run once at
 * start; every query waits for them, and a failed run is tried again by the next query), the
 * outbox consumer, and — with `store: "postgres"` — the store and the durable channels broker.
 */
export class PostgresService {
  readonly pool: PgPool;
  private migrated: Promise<void> | undefined;
  private consumer: OutboxConsumer | undefined;

  constructor(
    private readonly options: HubOptions,
    private readonly logger: Logger,
  ) {
    const pg = options.postgres;
    if (pg.url === null) throw new TypeError('PostgresService needs postgres.url');
    this.pool = new PgPool({
      url: pg.url,
      queryTimeoutMs: pg.queryTimeoutMs,
      connectTimeoutMs: pg.connectTimeoutMs,
      size: pg.poolSize,
      logger,
    });
    this.pool.setGate(() => this.ready());
  }

  /** Resolves once the migrations ran; a failure rejects (114) and the next call tries again. */
  ready(): Promise<void> {
    this.migrated ??= migrate(this.pool, this.target()).then(
      (applied) => {
        if (applied.length > 0) this.logger.info({ applied, schema: this.options.postgres.schema }, 'postgres migrations applied');
      },
      (err: unknown) => {
        this.migrated = undefined;
        throw err instanceof HubError ? err : new HubError(114, `postgres migrations failed: ${(err as Error).message}`);
      },
    );
    return this.migrated;
  }

  store(): PgStore {
    return new PgStore(this.pool, { schema: this.options.postgres.schema, retentionMs: this.options.storeRetentionSeconds * 1000 });
  }

  /** `inner` with the notification channels kept in PostgreSQL. */
  durableBroker(inner: Broker): DurableChannelsBroker {
    const broker = new DurableChannelsBroker({
      inner,
      pool: this.pool,
      schema: this.options.postgres.schema,
      logger: this.logger,
      isDurable: isDurableChannel,
    });
    broker.start();
    return broker;
  }

  /** Starts consuming the outbox (when `postgres.outbox.enabled`) into `sink`. */
  startOutbox(sink: OutboxSink, onRows?: OutboxConsumerOptions['onRows']): void {
    const o = this.options.postgres.outbox;
    if (!o.enabled || this.consumer) return;
    this.consumer = new OutboxConsumer({
      pool: this.pool,
      target: this.target(),
      sink,
      logger: this.logger,
      batchSize: o.batchSize,
      pollIntervalMs: o.pollIntervalMs,
      ...(onRows ? { onRows } : {}),
    });
    this.consumer.start();
  }

  /** Stops the consumer (its current batch ends first). The pool closes with `close`. */
  async stopOutbox(): Promise<void> {
    await this.consumer?.close();
  }

  async close(): Promise<void> {
    try {
      await this.stopOutbox();
    } finally {
      await this.pool.close();
    }
  }

  private target(): { schema: string; table: string } {
    return { schema: this.options.postgres.schema, table: this.options.postgres.outbox.table };
  }
}
