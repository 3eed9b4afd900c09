/**
 * PostgreSQL for tests: a schema of its own on the shared server (127.0.0.1:5432, database
 * `test`), dropped after; and a private cluster (initdb + pg_ctl as the `postgres` user on a
 * free port, in a temporary directory) for tests that stop or restart PostgreSQL — never the
 * shared one.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { freePort } from './processes.js';

export const PG_URL = process.env.SWITCHBOARD_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A fresh schema name (`sbt_<random>`); `dropSchemas()` removes every one handed out. */
const schemas = new Set<{ url: string; schema: string }>();
export function testSchema(url = PG_URL): string {
  const schema = `sbt_${randomBytes(5).toString('hex')}`;
  schemas.add({ url, schema });
  return schema;
}

export async function dropSchemas(): Promise<void> {
  for (const entry of [...schemas]) {
    const client = new pg.Client({ connectionString: entry.url, connectionTimeoutMillis: 3_000 });
    try {
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${entry.schema}" CASCADE`);
      schemas.delete(entry);
    } catch {
      // A private cluster already gone takes its schemas with it.
      schemas.delete(entry);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

/** A plain client for a test's own SQL (an app writing the outbox); ended by the caller. */
export async function sql(url = PG_URL): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

function pgBin(name: string): string {
  const found = spawnSync('sh', ['-c', `ls -d /usr/lib/postgresql/*/bin/${name} 2>/dev/null | sort -V | tail -1`], { encoding: 'utf8' });
  return found.stdout.trim() || name;
}

/** A PostgreSQL cluster of the test's own (trust auth, user postgres, database postgres). */
export class OwnPostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async start(): Promise<OwnPostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'sb-pg-'));
    const pgUid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const pgGid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, pgUid, pgGid);
    const own = new OwnPostgres(dir, await freePort());
    runAsPostgres(pgBin('initdb'), ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync']);
    own.up();
    return own;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  up(): void {
    runAsPostgres(pgBin('pg_ctl'), [
      '-D',
      join(this.dir, 'data'),
      '-l',
      join(this.dir, 'log'),
      '-w',
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      'start',
    ]);
  }

  /** Stops it at once (`-m immediate`: connections cut, no checkpoint, like a crash). */
  down(): void {
    runAsPostgres(pgBin('pg_ctl'), ['-D', join(this.dir, 'data'), '-m', 'immediate', '-w', 'stop']);
  }

  /** Stops and removes it; never throws. */
  destroy(): void {
    try {
      this.down();
    } catch {
      // already down
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function runAsPostgres(bin: string, args: string[]): void {
  const r = spawnSync('runuser', ['-u', 'postgres', '--', bin, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
}

/** Inserts rows `from..to-1` of `channel` as `{n}` in transactions of 1-7 rows, one after another. */
export async function writeRows(url: string, schema: string, channel: string, from: number, to: number): Promise<void> {
  const db = await sql(url);
  try {
    let n = from;
    while (n < to) {
      const size = Math.min(to - n, 1 + (n % 7));
      const values = Array.from({ length: size }, (_, i) => `('${channel}', '{"n":${n + i}}')`).join(',');
      await db.query(`INSERT INTO "${schema}".switchboard_outbox (channel, data) VALUES ${values}`);
      n += size;
    }
  } finally {
    await db.end();
  }
}

export async function pending(url: string, schema: string): Promise<number> {
  const db = await sql(url);
  try {
    return Number((await db.query(`SELECT count(*) AS n FROM "${schema}".switchboard_outbox`)).rows[0].n);
  } finally {
    await db.end();
  }
}

export async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
