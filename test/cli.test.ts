import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';

/** The CLI as shipped: `npm test` builds dist/ first. */
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const children: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function env(dataDir: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_DATA_DIR: dataDir, SWITCHBOARD_LOG_LEVEL: 'warn' };
  delete e.SWITCHBOARD_TOKEN_SECRET;
  delete e.SWITCHBOARD_API_KEY;
  delete e.SWITCHBOARD_PORT;
  delete e.SWITCHBOARD_REDIS_URL;
  return e;
}

function run(args: string[], dataDir: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: env(dataDir), encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts a long-running command; `lines` collects its stdout lines. */
function start(
  args: string[],
  dataDir: string,
): { child: ChildProcess; lines: string[]; waitFor: (pred: (l: string) => boolean) => Promise<string> } {
  const child = spawn(process.execPath, [CLI, ...args], { env: env(dataDir), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: string[] = [];
  let partial = '';
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters) w();
  });
  const waitFor = (pred: (l: string) => boolean): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = lines.find(pred);
        if (hit !== undefined) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out; output so far: ${lines.join(' | ')}`));
      }, 15_000);
      waiters.add(check);
      child.once('exit', (code) => reject(new Error(`exited (${code}); output: ${lines.join(' | ')}`)));
      check();
    });
  return { child, lines, waitFor };
}

async function serve(dataDir: string): Promise<{ child: ChildProcess; ws: string; http: string }> {
  const s = start(['serve', '--port', '0', '--host', '127.0.0.1'], dataDir);
  const ws = (await s.waitFor((l) => l.includes('WebSocket'))).split(/\s+/).pop()!;
  const http = (await s.waitFor((l) => l.includes('HTTP API')))
    .trim()
    .split(/\s+/)[2]!
    .replace(/\/api$/, '');
  return { child: s.child, ws, http };
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sb-cli-'));
  dirs.push(d);
  return d;
}

describe('switchboard CLI', () => {
  it('round trip: serve, tail in one process, publish in another; offsets continue after a restart', async () => {
    const dir = join(tempDir(), 'data');
    const server = await serve(dir);
    expect(statSync(join(dir, 'secrets.json')).mode & 0o777).toBe(0o600);
    const tail = start(['tail', 'news', '--url', server.ws.replace(/\/ws$/, '')], dir);
    // Publish until the tail is subscribed and prints one, then let in-flight ones land.
    for (let i = 0; i < 100 && tail.lines.length === 0; i++) {
      const out = run(['publish', 'news', `{"warmup":${i}}`, '--url', server.http], dir);
      expect(out.code, out.stderr).toBe(0);
      expect(JSON.parse(out.stdout)).toEqual({ offset: expect.any(Number), epoch: expect.any(String) });
      if (tail.lines.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(tail.lines[0]).toMatch(/^\{"warmup":\d+\}$/);
    await new Promise((r) => setTimeout(r, 300));
    const before = tail.lines.length;
    const second = run(['publish', 'news', '[2,"two"]', '--url', server.http], dir);
    const pos = JSON.parse(second.stdout) as { offset: number; epoch: string };
    await tail.waitFor((l) => l === '[2,"two"]');
    expect(tail.lines.slice(before)).toEqual(['[2,"two"]']);
    expect(await stop(server.child)).toBe(0);

    const again = await serve(dir);
    const third = run(['publish', 'news', '"three"', '--url', again.http], dir);
    expect(JSON.parse(third.stdout)).toEqual({ offset: pos.offset + 1, epoch: pos.epoch });
    await stop(again.child);
  });

  it('tail ends with one line and a non-zero exit when refused', async () => {
    const dir = join(tempDir(), 'data');
    const server = await serve(dir);
    const url = server.ws.replace(/\/ws$/, '');
    const check = (args: string[], pattern: RegExp, d = dir): Promise<void> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [CLI, ...args], { env: env(d), stdio: ['ignore', 'pipe', 'pipe'] });
        children.push(child);
        let stderr = '';
        child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
        child.once('exit', (code) => {
          try {
            expect(code, args.join(' ')).not.toBe(0);
            const errors = stderr
              .trim()
              .split('\n')
              .filter((l) => l.startsWith('switchboard: '));
            expect(errors, stderr).toHaveLength(1);
            expect(errors[0]).toMatch(pattern);
            resolve();
          } catch (err) {
            reject(err as Error);
          }
        });
      });
    await check(['tail', 'news', '--url', url, '--token', 'not-a-jwt'], /connect refused/);
    await check(['tail', 'nope:x', '--url', url], /subscribe failed: error 102/);
    await check(['tail', 'news', '--url', url], /no token secret/, tempDir());
    await stop(server.child);
  });

  it('prints a token for a user, signed with the data directory secret', () => {
    const dir = tempDir();
    const out = run(['token', '--user', 'bob', '--ttl', '30m', '--channels', 'a:*,b'], dir);
    expect(out.code).toBe(1); // no secret yet: a one-line error
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
    const withEnv = spawnSync(process.execPath, [CLI, 'token', '--user', 'bob', '--ttl', '30m', '--channels', 'a:*,b'], {
      env: { ...env(dir), SWITCHBOARD_TOKEN_SECRET: 's'.repeat(40) },
      encoding: 'utf8',
    });
    expect(withEnv.status).toBe(0);
    const claims = decodeJwt(withEnv.stdout.trim());
    expect(claims.sub).toBe('bob');
    expect(claims.channels).toEqual(['a:*', 'b']);
    expect(claims.exp! - claims.iat!).toBe(1800);
  });

  it('refuses bad arguments with one line and a non-zero exit', () => {
    const dir = tempDir();
    for (const args of [
      ['bogus'],
      ['serve', '--port', 'abc'],
      ['serve', '--nope'],
      ['token'],
      ['token', '--user'],
      ['tail'],
      ['publish', 'news'],
      ['publish', 'news', '{bad json'],
      ['serve', '--config', join(dir, 'missing.json')],
    ]) {
      const out = run(args, dir);
      expect(out.code, args.join(' ')).toBe(2);
      expect(out.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(out.stderr).toMatch(/^switchboard: /);
    }
    expect(run([], dir).code).toBe(2);
    expect(run(['--help'], dir).code).toBe(0);
  });
});
