import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer } from './support/harness.js';

const dirs: string[] = [];
afterEach(async () => {
  await closeAllServers();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'switchboard-restart-'));
  dirs.push(d);
  return d;
}

describe('restart of the embedded server', () => {
  it('continues offsets in the same epoch and still recovers across a restart (SQLite under dataDir)', async () => {
    const dataDir = tempDir();
    const s1 = await createTestServer({ dataDir });
    const ch = 'chat:durable';
    const c1 = await s1.client();
    const sub = await c1.subscribe(ch);
    for (let i = 1; i <= 5; i++) await s1.hub.publish(ch, { n: i });
    const got = await c1.waitForPushes(5, (m) => m.push === 'pub');
    const last = { offset: got[2]!.offset!, epoch: got[0]!.epoch as string }; // saw 1..3 only; the first names the epoch
    expect(sub.position.offset).toBe(0);
    expect(last.offset).toBe(3);
    await s1.close();

    const s2 = await createTestServer({ dataDir });
    const next = await s2.hub.publish(ch, { n: 6 });
    expect(next).toEqual({ offset: 6, epoch: last.epoch });
    const c2 = await s2.client();
    const rec = await c2.subscribe(ch, last);
    expect(rec.recovered).toBe(true);
    expect(rec.position).toEqual({ offset: 6, epoch: last.epoch });
    expect(rec.publications.map((p: { offset: number; data: { n: number } }) => [p.offset, p.data.n])).toEqual([
      [4, 4],
      [5, 5],
      [6, 6],
    ]);
    const h = await c2.call('history', { channel: ch, limit: 10 });
    expect(h.publications.map((p: { offset: number }) => p.offset)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('keeps idempotency keys across a restart', async () => {
    const dataDir = tempDir();
    const s1 = await createTestServer({ dataDir });
    const first = await s1.hub.publish('chat:idem', { v: 1 }, { idempotencyKey: 'k-1' });
    await s1.close();
    const s2 = await createTestServer({ dataDir });
    const again = await s2.hub.publish('chat:idem', { v: 1 }, { idempotencyKey: 'k-1' });
    expect(again).toEqual(first);
    const other = await s2.hub.publish('chat:idem', { v: 2 });
    expect(other.offset).toBe(first.offset + 1);
  });

  it('in memory-only mode a restart starts a new epoch, so old positions do not recover', async () => {
    const s1 = await createTestServer({ dataDir: null });
    const pos = await s1.hub.publish('chat:mem', 1);
    await s1.close();
    const s2 = await createTestServer({ dataDir: null });
    await s2.hub.publish('chat:mem', 2);
    const rec = await (await s2.client()).subscribe('chat:mem', pos);
    expect(rec.recovered).toBe(false);
    expect(rec.publications).toEqual([]);
    expect(rec.position.epoch).not.toBe(pos.epoch);
  });

  it('graceful close tells every client to reconnect elsewhere (disconnect push, then close 4000)', async () => {
    const s = await createTestServer();
    const a = await s.client();
    const b = await s.client({ user: 'bob' });
    await a.subscribe('chat:x');
    await s.hub.close();
    for (const c of [a, b]) {
      const closed = await c.waitForClose();
      expect(closed.code).toBe(4000);
      const push = c.pushes('disconnect');
      expect(push).toHaveLength(1);
      expect(push[0]).toMatchObject({ code: 4000, reconnect: true });
    }
    expect(s.hub.stats().connections).toBe(0);
  });
});
