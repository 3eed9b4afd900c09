import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer, sleep, until } from './support/harness.js';
import { ProtocolClient } from './support/protocol-client.js';
import { freePort } from './support/processes.js';

/** deploy/nginx.conf, exercised for real: Debian's nginx in front of two nodes joined by Redis. */
const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => spawnSync(p, ['-v']).status === 0);
const prefix = `sbtest-${randomUUID()}`;
const cleanups: Array<() => unknown> = [];

afterAll(async () => {
  for (const fn of cleanups.reverse()) await fn();
  await closeAllServers();
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

async function startNginx(upstreams: number[]): Promise<number> {
  if (!NGINX) throw new Error('nginx is not installed (apt-get install nginx-light); .ci/run installs it');
  const dir = mkdtempSync(join(tmpdir(), 'sb-nginx-'));
  const port = await freePort();
  const conf = readFileSync(new URL('../deploy/nginx.conf', import.meta.url), 'utf8')
    .replaceAll('{{PREFIX}}', dir)
    .replaceAll('{{PORT}}', String(port))
    .replaceAll('{{UPSTREAMS}}', upstreams.map((p) => `server 127.0.0.1:${p};`).join('\n    '));
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child: ChildProcess = spawn(NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: 'inherit',
  });
  cleanups.push(() => {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return port;
    await sleep(50);
  }
  throw new Error('nginx did not come up');
}

describe('deploy/nginx.conf in front of two nodes', () => {
  it('serves WebSocket and SSE through nginx without sticky sessions, and a client fails over to the other node', async () => {
    const shared = { redisUrl: REDIS_URL, redisPrefix: prefix };
    const a = await createTestServer(shared);
    const b = await createTestServer(shared);
    const port = await startNginx([a.port, b.port]);
    const token = await a.token('alice');

    const sse = await fetch(`http://127.0.0.1:${port}/sse?channel=chat:lb&token=${token}`);
    expect(sse.status).toBe(200);
    const reader = sse.body!.getReader();
    let sseText = '';
    const sseDone = (async () => {
      while (!sseText.includes('"n":1')) {
        const { value, done } = await reader.read();
        if (done) break;
        sseText += new TextDecoder().decode(value);
      }
    })();

    const clients: ProtocolClient[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await ProtocolClient.open(`ws://127.0.0.1:${port}/ws`);
      await c.connect(token);
      clients.push(c);
    }
    // least_conn spreads them over both nodes: no stickiness is needed for either to work.
    expect(a.hub.stats().connections).toBeGreaterThan(0);
    expect(b.hub.stats().connections).toBeGreaterThan(0);
    const replies = await Promise.all(clients.map((c) => c.subscribe('chat:lb')));
    await a.hub.publish('chat:lb', { n: 1 });
    // The first publication of the new stream names its epoch: the position every client now has.
    const firsts = await Promise.all(clients.map((c) => c.waitFor((m) => m.push === 'pub' && m.data.n === 1)));
    await sseDone;
    expect(sseText).toContain('event: chat:lb\ndata: {"n":1}');
    await reader.cancel();
    // Once the SSE stream is gone, node A's connections are the WebSocket clients it holds.
    await until(() => a.hub.stats().connections + b.hub.stats().connections === clients.length, 'the SSE stream to be released');
    const onA = a.hub.stats().connections;
    expect(onA).toBeGreaterThan(0);

    // Node A goes away: its clients are told to reconnect elsewhere, do so through nginx, and recover.
    await a.close();
    await until(() => clients.filter((c) => !c.isOpen).length >= onA, `the ${onA} clients of node A to see the close`);
    const moved = clients.filter((c) => !c.isOpen);
    expect(moved).toHaveLength(onA);
    for (const c of moved) expect(c.closeInfo?.code).toBe(4000);
    await b.hub.publish('chat:lb', { n: 2 });
    for (const [i, c] of clients.entries()) {
      if (!c.isOpen) {
        const again = await ProtocolClient.open(`ws://127.0.0.1:${port}/ws`);
        await again.connect(token);
        const rec = await again.subscribe('chat:lb', { offset: replies[i].position.offset + 1, epoch: firsts[i]!.epoch });
        expect(rec.recovered).toBe(true);
        expect(rec.publications.map((p: any) => p.data.n)).toEqual([2]);
        again.terminate();
      } else {
        await c.waitFor((m) => m.push === 'pub' && m.data.n === 2);
      }
    }
    for (const c of clients) c.terminate();
  });
});
