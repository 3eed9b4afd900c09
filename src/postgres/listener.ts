import type pg from 'pg';
import type { Logger } from 'pino';
import { ident, type PgPool } from './pool.js';

export interface PgListenerOptions {
  pool: PgPool;
  /** The NOTIFY channel. */
  channel: string;
  logger: Logger;
  onNotification: (payload: string | undefined) => void;
  /** Each time LISTEN is in place (first and after every reconnect): what was sent meanwhile was missed. */
  onListening?: () => void;
}

const MAX_BACKOFF_MS = 5_000;

/**
 * One LISTEN connection outside the pool. When it breaks (a PostgreSQL restart, a network cut)
 * it is opened again with backoff (100 ms doubling to 5 s), and `onListening` says so, since
 * notifications sent meanwhile are lost.
 */
export class PgListener {
  private client: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: PgListenerOptions) {}

  start(): void {
    void this.open(0);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    if (client) await client.end().catch(() => undefined);
  }

  private async open(attempt: number): Promise<void> {
    if (this.closed) return;
    const o = this.options;
    let client: pg.Client;
    try {
      client = await o.pool.connectDedicated();
      client.on('error', (err) => o.logger.warn({ err: err.message, channel: o.channel }, 'postgres listen connection failed'));
      client.on('notification', (msg) => o.onNotification(msg.payload));
      client.once('end', () => {
        if (this.client === client) this.client = undefined;
        this.retry(0);
      });
      await client.query(`LISTEN ${ident(o.channel)}`);
    } catch (err) {
      o.logger.warn({ err: (err as Error).message, channel: o.channel }, 'postgres listen failed; retrying');
      this.retry(attempt + 1);
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    o.onListening?.();
  }

  private retry(attempt: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.open(attempt), Math.min(MAX_BACKOFF_MS, 100 * 2 ** attempt));
    this.timer.unref();
  }
}
