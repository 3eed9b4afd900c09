import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer, TEST_SECRET } from './support/harness.js';
import { dropSchemas, PG_URL, pending, range, sql, testSchema, until, writeRows } from './support/postgres.js';

/**
 * The shipped CLI (`npm test` builds dist/ first): `switchboard migrate`, and `switchboard serve
 * --postgres URL` SIGKILLed in the middle of consuming the outbox, then started again.
 */
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const children: ChildProcess[] = [];
const dirs: string[] = [];
const prefixes: string[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await closeAllServers();
  await dropSchemas();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

afterAll(async () => {
  const redis = new Redis(REDIS_URL);
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
  }
  await redis.quit();
});

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_LOG_LEVEL: 'warn' };
  for (const k of ['SWITCHBOARD_TOKEN_SECRET', 'SWITCHBOARD_API_KEY', 'SWITCHBOARD_PORT', 'SWITCHBOARD_REDIS_URL', 'SWITCHBOARD_POSTGRES_URL']) delete e[k];
  return e;
}

function run(args: string[], extraEnv: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...env(), ...extraEnv }, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sb-pgcli-'));
  dirs.push(d);
  return d;
}

/** `switchboard serve --config FILE --postgres URL`; resolves once it prints its WebSocket URL. */
async function serve(config: string, dataDir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', config, '--postgres', PG_URL, '--port', '0', '--host', '127.0.0.1'], {
    env: { ...env(), SWITCHBOARD_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('outbox')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`serve exited (${code}): ${out} ${err}`)));
  });
  return child;
}

describe('switchboard migrate', () => {
  it('creates the outbox table and functions in the schema, is idempotent, re-creates a dropped table, and needs a URL', async () => {
    const schema = testSchema();
    const first = run(['migrate', '--postgres', PG_URL, '--schema', schema]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(new RegExp(`applied store-1, history-1, outbox-1:switchboard_outbox in schema ${schema}`));
    const again = run(['migrate', '--schema', schema], { SWITCHBOARD_POSTGRES_URL: PG_URL });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/is up to date/);
    const db = await sql();
    try {
      const id = (await db.query(`SELECT "${schema}".switchboard_publish('news', '{"x":1}'::jsonb) AS id`)).rows[0].id;
      expect(Number(id)).toBeGreaterThan(0);
      // The table dropped by hand is created again by the next migrate.
      await db.query(`DROP TABLE "${schema}".switchboard_outbox`);
      expect(run(['migrate', '--postgres', PG_URL, '--schema', schema]).stdout).toMatch(/applied outbox-1/);
      await db.query(`INSERT INTO "${schema}".switchboard_outbox (channel, data) VALUES ('news', '{}')`);
    } finally {
      await db.end();
    }
    const noUrl = run(['migrate']);
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toMatch(/--postgres URL/);
  }, 120_000);
});

describe('switchboard serve --postgres', () => {
  it('SIGKILLed in the middle of consuming, then restarted: every committed row exactly once, in order', async () => {
    const schema = testSchema();
    const redisPrefix = `sbt-pgcli-${randomUUID().slice(0, 8)}`;
    prefixes.push(redisPrefix);
    const options = {
      auth: { secret: TEST_SECRET },
      redisUrl: REDIS_URL,
      redisPrefix,
      namespaces: { chat: { history: { size: 5_000, ttlSeconds: 600 } } },
      limits: { shutdownSpreadMs: 0, shutdownTimeoutMs: 2_000 },
      postgres: { schema, outbox: { batchSize: 50, pollIntervalMs: 100 } },
    };
    const dir = tempDir();
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify(options));
    // A node that only reads (outbox off) creates the schema; the rows are all committed before any consumer runs.
    const reader = await createTestServer({ ...options, postgres: { url: PG_URL, schema, outbox: { enabled: false } } });
    const total = 1_000;
    await writeRows(PG_URL, schema, 'chat:kill', 0, total);
    const first = await serve(config, join(dir, 'data'));
    await until(async () => (await pending(PG_URL, schema)) < total - 100, 'some rows consumed');
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    expect(await pending(PG_URL, schema)).toBeGreaterThan(0); // killed mid-consume
    await serve(config, join(dir, 'data'));
    await until(async () => (await pending(PG_URL, schema)) === 0, 'the outbox drained after the restart');
    const sub = await reader.client({ user: 'reader' });
    const top = (await sub.call('history', { channel: 'chat:kill', limit: 0 })).position;
    const got: number[] = [];
    while (got.length < top.offset) {
      const page = await sub.call('history', { channel: 'chat:kill', since: { offset: got.length, epoch: top.epoch }, limit: 1000 });
      if (page.publications.length === 0) break;
      got.push(...page.publications.map((p: { data: { n: number } }) => p.data.n));
    }
    expect(top.offset).toBe(total);
    expect(got).toEqual(range(0, total));
  }, 120_000);
});
