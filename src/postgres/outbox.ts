import type { Logger } from 'pino';
import { withTimeout } from '../limits/timeout.js';
import { HubError } from '../protocol/errors.js';
import { LOCK_SPACE, outboxNotifyChannel, type MigrationTarget } from './migrations.js';
import { PgListener } from './listener.js';
import { ident, type PgPool, type Queryable } from './pool.js';

/** Where claimed rows go: the hub's server-side publish and notify. */
export interface OutboxSink {
  publish(channel: string, data: unknown, idempotencyKey: string): Promise<unknown>;
  notify(user: string, data: unknown, idempotencyKey: string): Promise<unknown>;
}

export interface OutboxConsumerOptions {
  pool: PgPool;
  target: MigrationTarget;
  sink: OutboxSink;
  logger: Logger;
  batchSize: number;
  pollIntervalMs: number;
  /** Counts rows published and rows refused for good (metrics). */
  onRows?: (outcome: 'published' | 'failed', count: number) => void;
}

interface OutboxRow {
  id: string;
  channel: string | null;
  notify_user: string | null;
  data: unknown;
  idempotency_key: string | null;
}

const MAX_BACKOFF_MS = 5_000;

/** The unit of order (and of the claim lock): a row's channel, or `#<user>` for a notification. */
const ORDER_KEY = `coalesce(channel, '#' || notify_user)`;

function orderKey(row: Pick<OutboxRow, 'channel' | 'notify_user'>): string {
  return row.channel ?? `#${row.notify_user}`;
}

/** The idempotency key a row is published with: the app's own key when it gave one, else the row id. */
export function outboxIdempotencyKey(row: Pick<OutboxRow, 'id' | 'idempotency_key'>): string {
  return row.idempotency_key !== null ? `outbox:key:${row.idempotency_key}`.slice(0, 128) : `outbox:${row.id}`;
}

/**
 * Consumes the outbox table: woken by NOTIFY (the seal trigger sends one per committing
 * transaction) and by a polling timer (a lost notification, a LISTEN connection being
 * re-established), it claims up to `batchSize` rows in one transaction and publishes them.
 *
 * - Claim: first a per-channel advisory lock (try-lock, so several nodes run in parallel and never
 *   hold the same channel at once), then, in a new statement, the oldest pending rows of the
 *   channels held, `FOR UPDATE` (see `claim`): never a row of a channel while an earlier one is
 *   left out.
 * - Order: rows are taken by `commit_seq`, which the seal trigger assigns in commit order per
 *   channel; rows of one channel are published one after another, channels in parallel.
 * - Exactly once: each row is published with its row id (or its `idempotency_key`) as the
 *   idempotency key, then deleted in the same transaction. If that transaction does not commit
 *   (crash, PostgreSQL gone), the rows are claimed again and the hub answers the repeated
 *   publish from its idempotency window (`limits.idempotencyWindowMs`) without delivering it twice.
 * - A row the hub refuses for good (bad channel, unknown namespace, too large) is marked
 *   `failed_at`/`error` and skipped; a temporary refusal (114) keeps it for a later attempt,
 *   after a backoff, and stops its channel for this batch so order holds.
 */
export class OutboxConsumer {
  private readonly table: string;
  private readonly listener: PgListener;
  private pollTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private failures = 0;
  private retryAt = 0;

  constructor(private readonly options: OutboxConsumerOptions) {
    this.table = `${ident(options.target.schema)}.${ident(options.target.table)}`;
    this.listener = new PgListener({
      pool: options.pool,
      channel: outboxNotifyChannel(options.target),
      logger: options.logger,
      onNotification: () => this.wake(),
      // Whatever was committed while no LISTEN was in place.
      onListening: () => this.wake(),
    });
  }

  start(): void {
    this.pollTimer = setInterval(() => this.wake(), this.options.pollIntervalMs);
    this.pollTimer.unref();
    this.listener.start();
    this.wake();
  }

  /** Runs batches until the table is empty (or a failure backs off); a wake during a run runs again. */
  wake(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.again && !this.closed) {
        this.again = false;
        this.wake();
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.retryTimer);
    try {
      await this.running;
    } finally {
      await this.listener.close();
    }
  }

  private async drain(): Promise<void> {
    if (Date.now() < this.retryAt) {
      // Backing off: come back when the backoff ends, whatever wakes us meanwhile.
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.wake(), this.retryAt - Date.now());
      this.retryTimer.unref();
      return;
    }
    while (!this.closed) {
      let claimed: number;
      try {
        claimed = await this.batch();
        this.failures = 0;
      } catch (err) {
        this.failures++;
        this.retryAt = Date.now() + Math.min(MAX_BACKOFF_MS, 50 * 2 ** this.failures);
        this.options.logger.warn({ err: (err as Error).message }, 'outbox batch failed; will retry');
        this.again = true; // schedules the retry timer
        return;
      }
      if (claimed < this.options.batchSize) return;
    }
  }

  /** One claim-publish-delete transaction; resolves with how many rows it claimed. */
  private async batch(): Promise<number> {
    let temporary: unknown;
    const claimed = await this.options.pool.transaction(async (tx) => {
      const rows = await this.claim(tx);
      if (rows.length === 0) return 0;
      const done: string[] = [];
      const failed: Array<{ id: string; error: string }> = [];
      const byChannel = new Map<string, OutboxRow[]>();
      for (const row of rows) {
        const key = orderKey(row);
        let list = byChannel.get(key);
        if (!list) byChannel.set(key, (list = []));
        list.push(row);
      }
      await Promise.all(
        [...byChannel.values()].map(async (list) => {
          for (const row of list) {
            try {
              await this.publishRow(row);
              done.push(row.id);
            } catch (err) {
              if (isPermanent(err)) {
                failed.push({ id: row.id, error: (err as Error).message });
                this.options.onRows?.('failed', 1);
                this.options.logger.warn({ id: row.id, err: (err as Error).message }, 'outbox row refused; marked failed');
                continue;
              }
              temporary ??= err;
              return; // the rest of this channel waits, in order, for a later batch
            }
          }
        }),
      );
      await this.finish(tx, done, failed);
      return rows.length;
    });
    if (temporary !== undefined) throw temporary;
    return claimed;
  }

  /**
   * Claims up to `batchSize` rows in two statements. First the channels: the try-lock picks those
   * no other consumer holds among the oldest pending rows. Then, in a fresh statement (a snapshot
   * taken after every lock is held, so whatever an earlier holder of a channel committed is
   * visible), the rows of those channels in `commit_seq` order with a plain `FOR UPDATE`: a row
   * another transaction holds is waited for (bounded by `queryTimeoutMs`), never skipped. So what
   * is claimed of each channel is exactly its oldest pending rows, whatever the first statement
   * saw (a snapshot from before another node committed, a lock won mid-scan, a planner that
   * evaluates the filter on every row: at worst channels locked for nothing this batch).
   */
  private async claim(tx: Queryable): Promise<OutboxRow[]> {
    const picked = await tx.query<{ key: string }>(
      `SELECT DISTINCT key FROM (
         SELECT ${ORDER_KEY} AS key FROM ${this.table}
          WHERE failed_at IS NULL AND pg_try_advisory_xact_lock(${LOCK_SPACE.claim}, hashtext(${ORDER_KEY}))
          ORDER BY commit_seq NULLS LAST, id
          LIMIT $1) AS head`,
      [this.options.batchSize],
    );
    if (picked.rows.length === 0) return [];
    const { rows } = await tx.query<OutboxRow>(
      `SELECT id, channel, notify_user, data, idempotency_key FROM ${this.table}
        WHERE failed_at IS NULL AND ${ORDER_KEY} = ANY($1::text[])
        ORDER BY commit_seq NULLS LAST, id
        LIMIT $2
        FOR UPDATE`,
      [picked.rows.map((r) => r.key), this.options.batchSize],
    );
    return rows;
  }

  /**
   * Publishes one row, bounded (the claim transaction must not stay open on a stalled hub): past
   * the bound it counts as a temporary failure, and if the publish lands after all, the repeat
   * is answered from the idempotency window.
   */
  private async publishRow(row: OutboxRow): Promise<void> {
    const key = outboxIdempotencyKey(row);
    const { sink } = this.options;
    const publishing = row.notify_user !== null ? sink.notify(row.notify_user, row.data, key) : sink.publish(row.channel!, row.data, key);
    await withTimeout(publishing, this.options.pool.options.queryTimeoutMs, () => new HubError(114, `outbox publish of row ${row.id} timed out`));
    this.options.onRows?.('published', 1);
  }

  private async finish(tx: Queryable, done: string[], failed: Array<{ id: string; error: string }>): Promise<void> {
    if (done.length > 0) await tx.query(`DELETE FROM ${this.table} WHERE id = ANY($1::bigint[])`, [done]);
    if (failed.length > 0) {
      await tx.query(
        `UPDATE ${this.table} AS t SET failed_at = now(), error = f.error
           FROM unnest($1::bigint[], $2::text[]) AS f(id, error) WHERE t.id = f.id`,
        [failed.map((f) => f.id), failed.map((f) => f.error.slice(0, 1000))],
      );
    }
  }
}

/** A refusal that retrying cannot cure: a HubError that is not temporary. */
function isPermanent(err: unknown): boolean {
  return err instanceof HubError && !err.temporary;
}
