import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { MemoryBroker } from '../broker/memory.js';
import { RedisBroker } from '../broker/redis.js';
import { RedisClusterBroker } from '../broker/redis-cluster.js';
import type { HubOptions } from '../config/options.js';
import { MemoryIdempotencyLog, SqliteIdempotencyLog } from '../history/idempotency-log.js';
import { MemoryHistoryLog } from '../history/memory-log.js';
import { SqliteHistoryLog } from '../history/sqlite-log.js';
import { MemoryPresenceStore } from '../presence/memory.js';
import type { PresenceStore } from '../presence/presence-store.js';
import { RedisPresenceStore, type RedisPresenceStoreOptions } from '../presence/redis.js';
import { closeRedis, createRedisConnection, type RedisClient } from '../redis/connection.js';
import { createRedisCluster } from '../redis/cluster.js';
import { redisTargetOf, type RedisTarget } from '../redis/target.js';
import { LocalChannelDirectory, type ChannelDirectory } from '../stats/channel-directory.js';
import { RedisChannelDirectory } from '../stats/redis-directory.js';
import { MemoryStore } from '../store/memory.js';
import { RedisStore } from '../store/redis.js';
import { SqliteCheckpointer } from '../store/sqlite-checkpointer.js';
import { openDatabase, type SqliteDatabase } from '../store/sqlite-db.js';
import { SqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/store.js';
import { PostgresService } from '../postgres/service.js';
import type { OutboxSink } from '../postgres/outbox.js';
import { MemoryDocStore, type DocStore } from '../collab/doc-store.js';
import { RedisDocStore } from '../collab/redis-docs.js';
import { SqliteDocStore } from '../collab/sqlite-docs.js';
import Database from 'better-sqlite3';
import type { WebhookEventType } from '../config/options.js';
import type { WebhookStore } from '../webhooks/events.js';
import { RedisWebhookStore } from '../webhooks/redis-store.js';
import { SqliteWebhookStore } from '../webhooks/sqlite-store.js';

export interface GivenStorage {
  broker?: Broker;
  presence?: PresenceStore;
  store?: Store;
}

/**
 * Everything a hub stores through, chosen from the options: Redis when `redisUrl`, `redisCluster`
 * or `redisSentinel` is set (the broker keeps its own connections; presence, store and directory
 * share one), else the
 * embedded default (SQLite under `dataDir`, or memory). Pieces given by the caller are used as
 * they are. `close` ends every piece within its time budget, whatever the backends do.
 */
export class Storage {
  readonly broker: Broker;
  readonly presence: PresenceStore;
  readonly store: Store;
  private directory: ChannelDirectory | undefined;
  private redis: RedisClient | undefined;
  private readonly target: RedisTarget | undefined;
  private db: SqliteDatabase | undefined;
  /** WAL checkpoints of `db`, in a worker thread (the main connection only appends). */
  private checkpointer: SqliteCheckpointer | undefined;
  /** PostgreSQL (`postgres.url`): the outbox consumer, and the store when `store` is "postgres". */
  private readonly postgres: PostgresService | undefined;
  private memoryDb: SqliteDatabase | undefined;

  constructor(
    private readonly options: HubOptions,
    private readonly logger: Logger,
    given: GivenStorage,
    onRestored: RedisPresenceStoreOptions['onRestored'],
  ) {
    const o = options;
    const retentionMs = o.storeRetentionSeconds * 1000;
    const commandTimeoutMs = o.redisCommandTimeoutMs;
    const target = (this.target = redisTargetOf(o));
    const shared = target ? this.openRedis(target) : undefined;
    this.postgres = o.postgres.url !== null ? new PostgresService(o, logger) : undefined;
    if (given.broker) this.broker = given.broker;
    else if (target?.kind === 'cluster')
      this.broker = new RedisClusterBroker({ seeds: target.seeds, security: target.security, prefix: o.redisPrefix, logger, commandTimeoutMs });
    else if (target) {
      const url = target.kind === 'url' ? target.url : target.sentinel;
      this.broker = new RedisBroker({ url, prefix: o.redisPrefix, logger, commandTimeoutMs });
    } else if (o.dataDir !== null) {
      const db = this.openDb(o.dataDir);
      const history = new SqliteHistoryLog(db);
      this.broker = new MemoryBroker({
        history,
        idempotency: new SqliteIdempotencyLog(db),
        // The history's transaction: its appends use the stream-row cache, cleared on a rollback.
        atomically: (fn) => history.transaction(fn),
        batchWrites: true,
      });
    } else this.broker = new MemoryBroker({ history: new MemoryHistoryLog(), idempotency: new MemoryIdempotencyLog() });
    this.presence =
      given.presence ??
      (shared
        ? new RedisPresenceStore({
            redis: shared,
            prefix: o.redisPrefix,
            ttlMs: o.presenceTtlSeconds * 1000,
            logger,
            commandTimeoutMs,
            ...(onRestored ? { onRestored } : {}),
          })
        : new MemoryPresenceStore());
    if (this.postgres && o.store === 'postgres') this.broker = this.postgres.durableBroker(this.broker);
    this.store =
      given.store ??
      (this.postgres && o.store === 'postgres'
        ? this.postgres.store()
        : shared
          ? new RedisStore(shared, o.redisPrefix, { retentionMs, commandTimeoutMs })
          : o.dataDir !== null
            ? new SqliteStore(this.openDb(o.dataDir), { retentionMs })
            : new MemoryStore({ retentionMs }));
  }

  /** Resolves once every backend that must be prepared is (the PostgreSQL migrations); rejects with 114. */
  async ready(): Promise<void> {
    await this.postgres?.ready();
  }

  /** Starts the outbox consumer, when PostgreSQL is configured, publishing through `sink`. */
  startOutbox(sink: OutboxSink, onRows?: (outcome: 'published' | 'failed', count: number) => void): void {
    this.postgres?.startOutbox(sink, onRows);
  }

  /** The Redis connection presence, store and directory share, when the hub uses Redis. */
  get sharedRedis(): RedisClient | undefined {
    return this.redis;
  }

  /** Channel listings across nodes (Redis snapshots) or of this node alone. */
  openDirectory(counts: () => Map<string, number>): ChannelDirectory {
    const o = this.options;
    this.directory = this.redis
      ? new RedisChannelDirectory(this.redis, o.redisPrefix, counts, o.statsIntervalMs, this.logger, o.redisCommandTimeoutMs, {
          oneSlot: this.target?.kind === 'cluster',
        })
      : new LocalChannelDirectory(counts);
    return this.directory;
  }

  /** Where documents are kept: Redis (a server, a cluster or behind Sentinel), else SQLite under dataDir, else memory. */
  openDocStore(): DocStore {
    const o = this.options;
    if (this.target) return new RedisDocStore(this.openRedis(this.target), o.redisPrefix, o.redisCommandTimeoutMs);
    if (o.dataDir !== null) return new SqliteDocStore(this.openDb(o.dataDir));
    return new MemoryDocStore();
  }

  /**
   * Where webhook state and the webhook queue live: Redis when several nodes share one, else
   * the embedded SQLite file under dataDir (durable), or an in-memory SQLite database.
   */
  openWebhookStore(enabled: ReadonlySet<WebhookEventType>): WebhookStore {
    const o = this.options;
    if (this.redis) return new RedisWebhookStore(this.redis, o.redisPrefix, o.redisCommandTimeoutMs, enabled);
    if (o.dataDir !== null) return new SqliteWebhookStore(this.openDb(o.dataDir), enabled);
    this.memoryDb ??= new Database(':memory:');
    return new SqliteWebhookStore(this.memoryDb, enabled);
  }

  /** Closes every piece, each given what is left until `deadline` (at least 100 ms); never throws. */
  async close(deadline: number): Promise<void> {
    const left = (): number => Math.max(100, deadline - Date.now());
    try {
      // The outbox first: its batch in flight publishes through the broker below.
      if (this.postgres) await bounded(() => this.postgres!.stopOutbox(), left(), this.logger);
      for (const piece of [this.directory, this.broker, this.presence, this.store]) {
        if (piece) await bounded(() => piece.close(), left(), this.logger);
      }
      if (this.redis) await closeRedis(this.redis, Math.min(left(), this.options.redisCommandTimeoutMs));
      if (this.postgres) await bounded(() => this.postgres!.close(), left(), this.logger);
    } finally {
      try {
        await this.checkpointer?.close();
      } finally {
        this.db?.close();
        this.memoryDb?.close();
      }
    }
  }

  /** The connection presence, store and directory share: every command bounded, nothing re-sent. */
  private openRedis(target: RedisTarget): RedisClient {
    const conn = { commandTimeoutMs: this.options.redisCommandTimeoutMs, logger: this.logger, name: 'shared' };
    this.redis ??=
      target.kind === 'cluster'
        ? createRedisCluster(target.seeds, { ...conn, security: target.security })
        : createRedisConnection(target.kind === 'url' ? target.url : target.sentinel, conn);
    return this.redis;
  }

  /** The embedded SQLite file, opened once for every store that lives in it. */
  private openDb(dataDir: string): SqliteDatabase {
    if (!this.db) {
      this.db = openDatabase(dataDir);
      this.checkpointer = new SqliteCheckpointer(this.db, this.logger);
    }
    return this.db;
  }
}

/** Runs one close step, giving up on it (logged) after `ms`; never throws. */
async function bounded(step: () => Promise<unknown>, ms: number, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([step(), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  } catch (err) {
    logger.warn({ err }, 'shutdown step failed');
  } finally {
    clearTimeout(timer);
  }
}
