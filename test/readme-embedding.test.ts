import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { SwitchboardClient } from '../dist/client/index.js';

/**
 * The README's embedding examples as written: the JavaScript one runs with plain `node` in a
 * scratch project that depends on this package (a symlink, as `npm install ./switchboard` makes),
 * keeps serving after its top-level code ran (no `hub.close()` at the end), issues browser
 * tokens with signToken, and stops gracefully on SIGTERM. The TypeScript one type-checks.
 */
const ROOT = join(import.meta.dirname, '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const project = mkdtempSync(join(tmpdir(), 'sb-embed-'));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(project, { recursive: true, force: true });
});

/** The first fenced block of `lang` under the heading `## Embedding`. */
function embeddingBlock(lang: 'js' | 'ts'): string {
  const section = README.slice(README.indexOf('## Embedding\n'));
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section);
  if (!m) throw new Error(`the README lost its ${lang} embedding example`);
  return m[1]!;
}

describe('README embedding example', () => {
  it('the JavaScript example runs with plain node, serves tokens and messages, and is not closed at the end', async () => {
    const code = embeddingBlock('js');
    expect(code).not.toMatch(/await hub\.close\(\);\s*$/);
    mkdirSync(join(project, 'node_modules'), { recursive: true });
    symlinkSync(ROOT, join(project, 'node_modules', 'switchboard'), 'dir');
    writeFileSync(join(project, 'server.mjs'), code);
    const secret = 'readme-embedding-secret-0123456789abcdef';
    const child = spawn(process.execPath, ['server.mjs'], {
      cwd: project,
      env: { PATH: process.env.PATH, SWITCHBOARD_TOKEN_SECRET: secret, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const base = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`example exited (${code}): ${out} ${err}`)));
    });

    const token = await (await fetch(`${base}/token?user=ann`)).text();
    expect(decodeJwt(token).sub).toBe('ann');
    const client = new SwitchboardClient(`${base.replace('http', 'ws')}/ws`, {
      getToken: async () => (await fetch(`${base}/token?user=ann`)).text(),
    });
    try {
      const got: unknown[] = [];
      const room = client.subscribe('chat:general', { onPublication: (p) => void got.push(p.data) });
      client.connect();
      await room.ready();
      // The example published before anyone listened: it is in history.
      const { publications } = await room.history({ limit: 5 });
      expect(publications.map((p) => p.data)).toContainEqual({ text: 'hello' });
      // Its onPublish hook stamps client publications; its RPC answers.
      await room.publish({ text: 'from the test' });
      for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      expect(got[0]).toMatchObject({ text: 'from the test', at: expect.any(Number) });
      expect(await client.rpc('message:send', { to: 'bob' })).toEqual({ ok: true, from: 'ann', to: 'bob' });
    } finally {
      client.disconnect();
    }
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(err).toBe('');
  });

  it('the TypeScript example type-checks against the package', () => {
    const dir = join(project, 'ts');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'server.ts'), embeddingBlock('ts'));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules', '@types')],
          paths: { switchboard: [join(ROOT, 'dist', 'index.d.ts')] },
        },
        files: ['server.ts'],
      }),
    );
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8', timeout: 60_000 });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  }, 60_000);
});
