import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { signToken } from '../src/auth/token.js';
import { SwitchboardClient, type Publication, type StateChange } from '../src/client/index.js';
import type { CreateHubOptions } from '../src/index.js';
import { TEST_SECRET } from './support/harness.js';
import { freePort, killProcesses, startHubProcess, waitFor, type HubProcess } from './support/processes.js';

/**
 * The hub runs as a child process with a SQLite data dir, is killed with SIGKILL and started
 * again on the same port and data dir (same epochs, offsets continue), while clients keep going.
 */
const clients: SwitchboardClient[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await killProcesses();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function hubOptions(): CreateHubOptions {
  const dataDir = mkdtempSync(join(tmpdir(), 'sb-client-restart-'));
  dirs.push(dataDir);
  return {
    auth: { secret: TEST_SECRET },
    dataDir,
    limits: { shutdownSpreadMs: 0, shutdownTimeoutMs: 2_000 },
    namespaces: { chat: { history: { size: 1_000, ttlSeconds: 600 } } },
  };
}

async function client(port: number, user: string): Promise<SwitchboardClient> {
  const c = new SwitchboardClient(`ws://127.0.0.1:${port}/ws`, {
    token: await signToken({ secret: TEST_SECRET, user, ttl: 3600 }),
    backoff: { minMs: 20, maxMs: 200, factor: 2 },
  });
  clients.push(c);
  return c;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/**
 * Publishes a marker from the server and waits for the subscriber to get it, then takes it off
 * `got`: anything extra (a duplicate) delivered before it has arrived by then.
 */
async function sentinel(server: HubProcess, channel: string, got: Publication<{ n: number }>[], offset: number): Promise<void> {
  server.publish(channel, { n: -1 });
  await waitFor(() => got.some((p) => p.data.n === -1), 'the sentinel publication');
  expect(got.at(-1)).toMatchObject({ offset, data: { n: -1 } });
  got.pop();
}

/** Every publication exactly once, in order: data 0..n-1 at consecutive offsets from `first`. */
function expectExactlyOnceInOrder(got: Publication<{ n: number }>[], n: number, first = 1): void {
  expect(got.map((p) => p.data.n)).toEqual(range(n));
  expect(got.map((p) => p.offset)).toEqual(range(n).map((i) => first + i));
}

describe('client across a server crash (SIGKILL) and restart', () => {
  it('a subscriber reconnects by itself and gets every publication exactly once, in order, while a publisher keeps publishing', async () => {
    const options = hubOptions();
    const port = await freePort();
    let server: HubProcess = await startHubProcess(options, port);
    const subscriber = await client(port, 'sub');
    const publisher = await client(port, 'pub');
    const subStates: StateChange[] = [];
    subscriber.on('state', (s) => subStates.push(s));
    const got: Publication<{ n: number }>[] = [];
    const recoveryFailed: unknown[] = [];
    const sub = subscriber.subscribe<{ n: number }>('chat:crash', {
      onPublication: (p) => got.push(p),
      onRecoveryFailed: (ctx) => recoveryFailed.push(ctx),
    });
    const pubSub = publisher.subscribe('chat:crash');
    subscriber.connect();
    publisher.connect();
    await Promise.all([sub.ready(), pubSub.ready()]);

    const N = 300;
    const results: Promise<{ offset: number; epoch: string }>[] = [];
    let restarted: Promise<void> | undefined;
    for (let i = 0; i < N; i++) {
      results.push(pubSub.publish({ n: i }));
      if (i === 100) {
        restarted = (async () => {
          await server.kill();
          await sleep(50);
          server = await startHubProcess(options, port);
        })();
      }
      await sleep(2);
    }
    await restarted;
    const positions = await Promise.all(results);
    await waitFor(() => got.length >= N, `${N} publications (have ${got.length})`, 20_000);
    await sentinel(server, 'chat:crash', got, N + 1);

    // The publisher: each publish applied once, in order (one offset each, no gaps, no repeats).
    expect(positions.map((p) => p.offset)).toEqual(range(N).map((i) => i + 1));
    expect(new Set(positions.map((p) => p.epoch)).size).toBe(1);
    // The subscriber: every publication once, in order, with recovery across the crash.
    expectExactlyOnceInOrder(got, N);
    expect(recoveryFailed).toEqual([]);
    expect(subStates.map((s) => s.state)).toContain('connecting');
    expect(subStates.filter((s) => s.state === 'connected').length).toBeGreaterThanOrEqual(2);
    expect(subscriber.state).toBe('connected');
    expect(server.child.pid).toBeDefined();
  });

  it('100 publishes made while the server is down all arrive exactly once after it restarts', async () => {
    const options = hubOptions();
    const port = await freePort();
    let server = await startHubProcess(options, port);
    const subscriber = await client(port, 'sub');
    const publisher = await client(port, 'pub');
    const got: Publication<{ n: number }>[] = [];
    const sub = subscriber.subscribe<{ n: number }>('chat:offline', { onPublication: (p) => got.push(p) });
    const pubSub = publisher.subscribe('chat:offline');
    subscriber.connect();
    publisher.connect();
    await Promise.all([sub.ready(), pubSub.ready()]);

    await server.kill();
    await waitFor(() => publisher.state === 'connecting' && subscriber.state === 'connecting', 'both clients to notice');
    const results = range(100).map((n) => pubSub.publish({ n }));
    expect(publisher.pendingPublishes).toBe(100);
    await sleep(100); // a few reconnect attempts fail meanwhile
    server = await startHubProcess(options, port);

    const positions = await Promise.all(results);
    expect(positions.map((p) => p.offset)).toEqual(range(100).map((i) => i + 1));
    await waitFor(() => got.length >= 100, `100 publications (have ${got.length})`);
    await sentinel(server, 'chat:offline', got, 101);
    expectExactlyOnceInOrder(got, 100);
    // And the stream itself holds each exactly once (then the sentinel).
    const history = await sub.history({ limit: 1_000 });
    expect(history.publications.map((p) => (p.data as { n: number }).n)).toEqual([...range(100), -1]);
    expect(publisher.pendingPublishes).toBe(0);
  });
});
