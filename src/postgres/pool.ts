import pg from 'pg';
import type { Logger } from 'pino';
import { withTimeout } from '../limits/timeout.js';
import { HubError } from '../protocol/errors.js';

export interface PgPoolOptions {
  url: string;
  /** statement_timeout of every connection, and the client-side bound of every query. */
  queryTimeoutMs: number;
  connectTimeoutMs: number;
  size: number;
  logger: Logger;
  /** application_name shown in pg_stat_activity. */
  name?: string;
}

/** What a query runs on: the pool itself or one checked-out client inside a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * SQLSTATE classes and client errors meaning "PostgreSQL is not there right now": connection
 * exceptions (08), operator intervention (57: shutdown, cannot connect now, statement timeout),
 * insufficient resources (53), and the driver's own connect/termination errors.
 */
export function isUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  if (/^(08|57|53)/.test(code)) return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'].includes(code)) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|timeout|Client has encountered a connection error|not queryable|connection .*closed/i.test(message);
}

/** Turns an unavailability into HubError 114 (temporary); any other error is passed on as it is. */
export function mapPgError(err: unknown, what: string): unknown {
  if (err instanceof HubError) return err;
  if (isUnavailable(err)) return new HubError(114, `postgres unavailable (${what}): ${(err as Error).message ?? String(err)}`);
  return err;
}

/**
 * A pg Pool where every statement is bounded twice (the server's statement_timeout and a client
 * timer, for a server that stopped answering) and opening a connection is bounded too, so a
 * stalled or gone PostgreSQL turns into error 114 instead of a hang.
 */
export class PgPool implements Queryable {
  readonly pool: pg.Pool;
  private closed = false;
  private gate: (() => Promise<void>) | undefined;

  constructor(readonly options: PgPoolOptions) {
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.size,
      connectionTimeoutMillis: options.connectTimeoutMs,
      idleTimeoutMillis: 30_000,
      statement_timeout: options.queryTimeoutMs,
      query_timeout: options.queryTimeoutMs + 500,
      application_name: options.name ?? 'switchboard',
      keepAlive: true,
    });
    // An idle client losing its connection (a PostgreSQL restart) must not crash the process.
    this.pool.on('error', (err) => options.logger.warn({ err: err.message }, 'postgres idle connection lost'));
  }

  /** Every later query and transaction first awaits `gate` (the migrations), unless `ungated`. */
  setGate(gate: () => Promise<void>): void {
    this.gate = gate;
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    this.assertOpen();
    await this.gate?.();
    try {
      return await withTimeout(this.pool.query<R>(text, values), this.bound(), () => new HubError(114, 'postgres query timed out'));
    } catch (err) {
      throw mapPgError(err, 'query');
    }
  }

  /**
   * Runs `fn` in one transaction on one client: COMMIT when it resolves, ROLLBACK when it throws
   * (then rethrown, unavailability as 114). A client whose connection broke is discarded.
   */
  async transaction<T>(fn: (client: Queryable) => Promise<T>, { ungated = false }: { ungated?: boolean } = {}): Promise<T> {
    this.assertOpen();
    if (!ungated) await this.gate?.();
    let client: pg.PoolClient;
    const connecting = this.pool.connect();
    try {
      client = await withTimeout(connecting, this.options.connectTimeoutMs + 500, () => new HubError(114, 'postgres connect timed out'));
    } catch (err) {
      // A client the pool hands over after the timer gave up goes straight back.
      connecting.then((late) => late.release(), () => undefined);
      throw mapPgError(err, 'connect');
    }
    let broken = false;
    // The pool listens for errors only on idle clients: one checked out here that loses its
    // connection (a PostgreSQL restart mid-transaction) would otherwise throw out of the process.
    const onError = (err: Error): void => {
      broken = true;
      this.options.logger.warn({ err: err.message }, 'postgres connection lost in a transaction');
    };
    client.on('error', onError);
    const bounded: Queryable = {
      query: async <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => {
        try {
          return await withTimeout(client.query<R>(text, values), this.bound(), () => new HubError(114, 'postgres query timed out'));
        } catch (err) {
          if (isUnavailable(err)) broken = true;
          throw mapPgError(err, 'query');
        }
      },
    };
    try {
      await bounded.query('BEGIN');
      const result = await fn(bounded);
      await bounded.query('COMMIT');
      return result;
    } catch (err) {
      if (!broken) await bounded.query('ROLLBACK').catch(() => (broken = true));
      throw mapPgError(err, 'transaction');
    } finally {
      client.removeListener('error', onError);
      client.release(broken ? true : undefined);
    }
  }

  /** A dedicated client outside the pool (the LISTEN connection), connect bounded. */
  async connectDedicated(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.options.url,
      connectionTimeoutMillis: this.options.connectTimeoutMs,
      statement_timeout: this.options.queryTimeoutMs,
      query_timeout: this.options.queryTimeoutMs + 500,
      application_name: `${this.options.name ?? 'switchboard'}-listen`,
      keepAlive: true,
    });
    try {
      await withTimeout(client.connect(), this.options.connectTimeoutMs + 500, () => new HubError(114, 'postgres connect timed out'));
      return client;
    } catch (err) {
      client.on('error', () => undefined);
      void client.end().catch(() => undefined);
      throw mapPgError(err, 'connect');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await withTimeout(this.pool.end(), this.options.queryTimeoutMs, 'postgres pool close timed out').catch(() => undefined);
  }

  private bound(): number {
    return this.options.queryTimeoutMs + 1_000;
  }

  private assertOpen(): void {
    if (this.closed) throw new HubError(114, 'postgres pool is closed');
  }
}

/** A quoted SQL identifier (the options only allow plain lowercase words; quoting is belt and braces). */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
