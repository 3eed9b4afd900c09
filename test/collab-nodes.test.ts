import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { signToken } from '../src/index.js';
import { converged, sdkDocument } from './support/collab.js';
import { closeAllServers, createTestServer, sleep, TEST_API_KEY, TEST_SECRET, until } from './support/harness.js';
import { killProcesses, startHubProcess } from './support/processes.js';

/** Documents on two nodes joined by the shared Redis on 6379 (own key prefix; Redis is never stopped). */
const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefixes: string[] = [];

afterEach(async () => {
  await killProcesses();
  await closeAllServers();
});
afterAll(async () => {
  const redis = new Redis(REDIS_URL);
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
  }
  await redis.quit();
});

function nodeOptions(prefix: string): Record<string, unknown> {
  return {
    redisUrl: REDIS_URL,
    redisPrefix: prefix,
    apiKey: TEST_API_KEY,
    auth: { secret: TEST_SECRET },
    namespaces: { docs: { document: true } },
    collab: { resyncIntervalMs: 1_000, compactDelayMs: 300 },
    limits: { shutdownSpreadMs: 0, shutdownTimeoutMs: 3_000 },
  };
}

async function readText(httpUrl: string, name: string): Promise<string> {
  const res = await fetch(`${httpUrl}/api/documents/${name}?text=text`, { headers: { authorization: `apikey ${TEST_API_KEY}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { text: { text: string } }).text.text;
}

describe('collab on several nodes', () => {
  it('3 editors on 2 nodes, one node SIGKILLed mid-run: all end identical, and the stored document equals them after a restart', async () => {
    const prefix = `sbtest-collab-${randomUUID()}`;
    prefixes.push(prefix);
    const [a, b] = await Promise.all([startHubProcess(nodeOptions(prefix)), startHubProcess(nodeOptions(prefix))]);
    const name = 'docs:shared';
    const editors = await Promise.all(
      [
        [a, b],
        [a, b],
        [b, a],
      ].map(async ([first, second], i) => {
        const doc = new Y.Doc();
        const provider = sdkDocument(name, doc, {
          url: [first!.httpUrl, second!.httpUrl],
          token: await signToken({ secret: TEST_SECRET, user: `editor${i}` }),
          backoff: { minMs: 50, maxMs: 300 },
        });
        return { doc, provider };
      }),
    );
    try {
      await Promise.all(editors.map((e) => e.provider.whenSynced()));
      // 150 rounds of random concurrent edits; node A dies after round 60 and its two editors move to B.
      let edits = 0;
      let killed = false;
      for (let round = 0; round < 150; round++) {
        for (const e of editors) {
          const t = e.doc.getText('text');
          if (t.length > 20 && Math.random() < 0.2) t.delete(Math.floor(Math.random() * (t.length - 3)), 2);
          else t.insert(Math.floor(Math.random() * (t.length + 1)), String.fromCharCode(97 + (edits % 26)));
          edits++;
        }
        if (!killed && round === 60) {
          killed = true;
          await a.kill();
        }
        await sleep(5 + Math.random() * 10);
      }
      await until(() => editors.every((e) => e.provider.synced), 'every editor synced again (on node B)', 15_000);
      const text = await converged(editors.map((e) => e.doc));
      expect(text.length).toBeGreaterThan(50);
      expect(await readText(b.httpUrl, name)).toBe(text);
      // A restart of the whole system: B goes too (SIGKILL), a fresh node loads from Redis.
      for (const e of editors) e.provider.destroy();
      await b.kill();
      const c = await startHubProcess(nodeOptions(prefix));
      expect(await readText(c.httpUrl, name)).toBe(text);
    } finally {
      for (const e of editors) e.provider.destroy();
    }
  }, 40_000);

  it('an update lost on the way between nodes is repaired from the store (periodic head check)', async () => {
    const prefix = `sbtest-collab-${randomUUID()}`;
    prefixes.push(prefix);
    const b = await createTestServer(nodeOptions(prefix));
    const name = 'docs:lossy';
    const token = await signToken({ secret: TEST_SECRET, user: 'u' });
    const onB = new Y.Doc();
    const pb = sdkDocument(name, onB, { url: b.httpUrl, token });
    await pb.whenSynced();
    // Append straight to the stored log, as if another node had stored it and its broadcast were
    // lost on Redis pub/sub: nothing announces it, only the stored head shows it.
    const src = new Y.Doc();
    src.getText('text').insert(0, 'written while the broadcast was lost');
    const redis = new Redis(REDIS_URL);
    await redis.rpush(`${prefix}:doc:log:{${name}}`, Buffer.from(Y.encodeStateAsUpdate(src)));
    await redis.quit();
    await until(() => onB.getText('text').toString() === 'written while the broadcast was lost', 'the repair', 10_000);
    pb.destroy();
  }, 20_000);
});
