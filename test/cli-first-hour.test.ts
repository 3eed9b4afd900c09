import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, cleanEnv, startServe, type ServeProcess } from './support/cli-serve.js';

/** The CLI's rough edges from the issue "a first hour without surprises", against dist/ as shipped. */
const dir = mkdtempSync(join(tmpdir(), 'sb-cli-hour-'));
const SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const API_KEY = 'an-api-key-for-the-cli-test';
const env = cleanEnv({ SWITCHBOARD_DATA_DIR: join(dir, 'data'), SWITCHBOARD_TOKEN_SECRET: SECRET, SWITCHBOARD_API_KEY: API_KEY });
const children: ChildProcess[] = [];
const serves: ServeProcess[] = [];

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const s of serves) await s.stop();
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env, cwd: dir, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('CLI: help, version, tail, port conflicts', () => {
  it('each subcommand has its own --help; --version prints the package version', () => {
    const texts = new Set<string>();
    for (const cmd of ['serve', 'token', 'tail', 'publish']) {
      const out = run([cmd, '--help']);
      expect(out.code, cmd).toBe(0);
      expect(out.stdout.startsWith(`usage: switchboard ${cmd} `), cmd).toBe(true);
      expect(out.stdout, cmd).toContain('--');
      texts.add(out.stdout);
      if (cmd === 'tail') expect(run(['help', cmd]).stdout).toBe(out.stdout);
    }
    expect(texts.size).toBe(4);
    const version = (JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
    expect(run(['--version'])).toMatchObject({ code: 0, stdout: `switchboard ${version}\n` });
  }, 60_000);

  it('a port in use: one line naming --port and SWITCHBOARD_PORT', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const out = run(['serve', '--memory', '--host', '127.0.0.1', '--port', String(port)]);
      expect(out.code).toBe(1);
      const line = out.stderr.trim().split('\n').pop()!;
      expect(line).toMatch(new RegExp(`^switchboard: port ${port} is already in use \\(EADDRINUSE\\)`));
      expect(line).toContain('--port');
      expect(line).toContain('SWITCHBOARD_PORT');
    } finally {
      blocker.close();
    }
  });

  it('tail says when it cannot connect, keeps retrying, and prints once the server is up', async () => {
    const port = await freePort();
    const tail = spawn(process.execPath, [CLI, 'tail', 'news', '--url', `ws://127.0.0.1:${port}`], { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(tail);
    let stdout = '';
    let stderr = '';
    tail.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    tail.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const until = async (pred: () => boolean, what: string, ms = 20_000): Promise<void> => {
      const end = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}; stderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await until(() => stderr.includes('cannot connect'), 'the cannot-connect line');
    expect(stderr).toContain(`tail: cannot connect to ws://127.0.0.1:${port}/ws: ECONNREFUSED`);
    expect(stderr).toContain('still retrying');
    expect(tail.exitCode).toBeNull();

    const serve = await startServe(['--memory', '--host', '127.0.0.1', '--port', String(port)], dir, env);
    serves.push(serve);
    await until(() => stderr.includes('tail: subscribed to news'), 'the subscription', 30_000);
    const res = await fetch(`${serve.httpUrl}/api/publish`, {
      method: 'POST',
      headers: { authorization: `apikey ${API_KEY}` },
      body: JSON.stringify({ channel: 'news', data: { after: 'retry' } }),
    });
    expect(res.status).toBe(200);
    await until(() => stdout.includes('{"after":"retry"}'), 'the publication');

    // HEAD on the pages: the GET headers, no body.
    for (const path of ['/', '/chat.html', '/client.js', '/vendor/uplot/uPlot.iife.min.js', '/admin', '/admin/static/admin.js']) {
      const head = await fetch(`${serve.httpUrl}${path}`, { method: 'HEAD' });
      expect(head.status, path).toBe(200);
      expect(Number(head.headers.get('content-length')), path).toBeGreaterThan(0);
      expect(await head.text(), path).toBe('');
    }
    // Metric names carry no doubled word.
    const metrics = await (await fetch(`${serve.httpUrl}/metrics`)).text();
    expect(metrics).toContain('switchboard_process_cpu_seconds_total');
    expect(metrics).not.toMatch(/switchboard_process_process_/);
  }, 60_000);
});
