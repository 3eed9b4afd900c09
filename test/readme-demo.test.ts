import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The README's two-line SSE demo, run as written (curl -N in one shell, curl -X POST in
 * another) against `switchboard serve` in a fresh directory, with only the port replaced.
 */
const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const children: ChildProcess[] = [];
const cwd = mkdtempSync(join(tmpdir(), 'sb-readme-'));

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(cwd, { recursive: true, force: true });
});

function readmeCurlLines(): [string, string] {
  const lines = readFileSync(join(ROOT, 'README.md'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('curl '));
  const stream = lines.find((l) => l.startsWith('curl -N'));
  const publish = lines.find((l) => l.startsWith('curl -X POST') && l.includes('/api/publish'));
  if (!stream || !publish) throw new Error('the README lost its curl demo');
  return [stream, publish];
}

describe('README SSE demo', () => {
  it('curl -N shows the event published by curl -X POST', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_LOG_LEVEL: 'warn' };
    for (const k of [
      'SWITCHBOARD_TOKEN_SECRET',
      'SWITCHBOARD_API_KEY',
      'SWITCHBOARD_DATA_DIR',
      'SWITCHBOARD_PORT',
      'SWITCHBOARD_REDIS_URL',
    ])
      delete env[k];
    const serve = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--host', '127.0.0.1'], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(serve);
    const port = await new Promise<string>((resolve, reject) => {
      let out = '';
      serve.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /127\.0\.0\.1:(\d+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      serve.once('exit', () => reject(new Error(`serve exited: ${out}`)));
    });
    // `npx switchboard` is the package's own bin; in a scratch directory call it by path.
    const adapt = (line: string): string => line.replaceAll('7070', port).replaceAll('npx switchboard', `node ${CLI}`);
    const [streamLine, publishLine] = readmeCurlLines().map(adapt) as [string, string];

    const stream = spawn('bash', ['-c', streamLine], { cwd, env, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(stream);
    let events = '';
    stream.stdout!.on('data', (c: Buffer) => (events += c.toString()));
    for (let i = 0; i < 100 && !events.includes('event: subscribed'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(events).toContain('event: subscribed');

    const published = spawnSync('bash', ['-c', publishLine], { cwd, env, encoding: 'utf8' });
    expect(published.status).toBe(0);
    expect(JSON.parse(published.stdout)).toMatchObject({ offset: 1 });
    for (let i = 0; i < 50 && !events.includes('"hi":1'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(events).toContain('event: news\ndata: {"hi":1}');
  });
});
