/**
 * State: reads of channels nobody published to leave nothing behind, provisional epochs and the
 * first publication's epoch make recovery exact from the very start of a stream, and a failing
 * presence join never doubles a subscribe reply.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryPresenceStore } from '../src/presence/memory.js';
import type { PresenceEntry, PresenceStore } from '../src/presence/presence-store.js';
import { provisionalEpochTime } from '../src/stream/epoch.js';
import type { ClientInfo } from '../src/stream/types.js';
import { closeAllServers, createTestServer, TEST_API_KEY } from './support/harness.js';
import type { ProtocolClient } from './support/protocol-client.js';
import { afterReply, range } from './support/core-helpers.js';

const dirs: string[] = [];
afterEach(async () => {
  await closeAllServers();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sb-core-state-'));
  dirs.push(d);
  return d;
}

const fast = { commandRate: { perSecond: 1_000_000, burst: 1_000_000 }, maxChannelsPerConnection: 2_000 };

/** Runs `fn` over `items` with at most `batch` calls in flight (the per-connection pending bound is 256). */
async function batched<T, R>(items: T[], batch: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += batch) out.push(...(await Promise.all(items.slice(i, i + batch).map(fn))));
  return out;
}

/** History reads, subscribes and unsubscribes of `names`; checks every answer is a provisional position. */
async function readEverything(c: ProtocolClient, names: string[]): Promise<void> {
  const hist = await batched(names, 200, (channel) => c.call('history', { channel, limit: 10 }));
  hist.forEach((h, i) => {
    expect(h.publications).toEqual([]);
    expect(h.position.offset).toBe(0);
    expect(provisionalEpochTime(names[i]!, h.position.epoch)).toEqual(expect.any(Number));
  });
  const subs = await batched(names, 200, (channel) => c.subscribe(channel));
  subs.forEach((r, i) => {
    expect(r.position.offset).toBe(0);
    expect(provisionalEpochTime(names[i]!, r.position.epoch)).toEqual(expect.any(Number));
  });
  // A recovering subscribe from the provisional position, and a history read with since.
  await batched(names, 200, (channel) => c.call('unsubscribe', { channel }));
  const again = await batched(names, 200, (channel) =>
    c.subscribe(channel, { offset: 0, epoch: subs[names.indexOf(channel)].position.epoch }),
  );
  again.forEach((r) => expect(r).toMatchObject({ recovered: true, publications: [] }));
  await batched(names, 200, (channel) => c.call('unsubscribe', { channel }));
  await batched(names, 200, (channel) =>
    c.call('history', { channel, since: { offset: 0, epoch: subs[names.indexOf(channel)].position.epoch } }),
  );
}

const names = range(1, 1000).map((i) => `chat:never-${i}`);

describe('reads of never-published channels leave no state', () => {
  it('(a) SQLite: 1,000 history reads and subscribes add no history_streams rows', async () => {
    const dataDir = tempDir();
    const s = await createTestServer({ dataDir, limits: fast });
    await s.hub.publish('chat:real', { n: 1 });
    const c = await s.client();
    await readEverything(c, names);
    // Over HTTP too.
    for (const channel of names.slice(0, 50)) {
      const res = await fetch(`${s.httpUrl}/api/history?channel=${channel}`, { headers: { authorization: `apikey ${TEST_API_KEY}` } });
      expect(res.status).toBe(200);
    }
    await s.close();
    const db = new Database(join(dataDir, 'switchboard.db'), { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT channel FROM history_streams ORDER BY channel').all() as Array<{ channel: string }>;
      expect(rows.map((r) => r.channel)).toEqual(['chat:real']);
      const pubs = db.prepare('SELECT COUNT(*) AS n FROM history_pubs').get() as { n: number };
      expect(pubs.n).toBe(1);
    } finally {
      db.close();
    }
  });

  it('(a) memory: after 1,000 reads and subscribes every name still reads as never published; a publish starts at offset 1', async () => {
    const s = await createTestServer({ limits: fast });
    const c = await s.client();
    await readEverything(c, names);
    // A read that had created a stream would now answer that stream's real epoch instead.
    const second = await batched(names, 200, (channel) => c.call('history', { channel, limit: 0 }));
    second.forEach((h, i) => expect(provisionalEpochTime(names[i]!, h.position.epoch)).toEqual(expect.any(Number)));
    const pos = await s.hub.publish(names[0]!, { first: true });
    expect(pos.offset).toBe(1);
    expect(provisionalEpochTime(names[0]!, pos.epoch)).toBeUndefined();
  });
});

for (const store of ['memory', 'sqlite'] as const) {
  describe(`epochs from the start of a stream (${store})`, () => {
    const options = () => (store === 'sqlite' ? { dataDir: tempDir() } : {});

    it('(b) the first publication carries the epoch; a resubscribe from {1, that epoch} recovers exactly', async () => {
      const s = await createTestServer(options());
      const ch = 'chat:fresh';
      const c = await s.client();
      const sub = await c.subscribe(ch);
      expect(sub.position.offset).toBe(0);
      const provisional = sub.position.epoch;
      expect(provisionalEpochTime(ch, provisional)).toEqual(expect.any(Number));
      const p1 = await s.hub.publish(ch, { n: 1 });
      const push = await c.waitFor((m) => m.push === 'pub' && m.channel === ch);
      expect(push).toMatchObject({ offset: 1, epoch: p1.epoch, data: { n: 1 } });
      expect(push.epoch).not.toBe(provisional);
      // Later pushes carry no epoch.
      await s.hub.publish(ch, { n: 2 });
      const [, second] = await c.waitForPushes(2, (m) => m.push === 'pub' && m.channel === ch);
      expect(second!.epoch).toBeUndefined();
      await c.call('unsubscribe', { channel: ch });
      for (let n = 3; n <= 5; n++) await s.hub.publish(ch, { n });

      const id = c.id();
      const mark = c.messages.length;
      const replyP = c.expectReply(id);
      c.sendRaw(JSON.stringify({ id, method: 'subscribe', params: { channel: ch, since: { offset: 1, epoch: push.epoch } } }));
      const reply = await replyP;
      expect(reply.result).toMatchObject({ recovered: true, position: { offset: 5, epoch: p1.epoch } });
      expect(reply.result.publications.map((p: { data: { n: number } }) => p.data.n)).toEqual([2, 3, 4, 5]);
      const sentinel = await s.hub.publish(ch, { sentinel: true });
      await c.waitFor((m) => m.push === 'pub' && m.offset === sentinel.offset);
      expect(afterReply(c, id, ch, mark).pushes.map((p) => p.offset)).toEqual([6]);
    });

    it('(b) a resubscribe from {0, the provisional epoch} after 5 publications recovers all 5', async () => {
      const s = await createTestServer(options());
      const ch = 'chat:fresh-provisional';
      const c = await s.client();
      const sub = await c.subscribe(ch);
      await c.close();
      const made = [];
      for (let n = 1; n <= 5; n++) made.push(await s.hub.publish(ch, { n }));
      const again = await s.client();
      const rec = await again.subscribe(ch, sub.position);
      expect(rec.recovered).toBe(true);
      expect(rec.position).toEqual(made.at(-1));
      expect(rec.publications.map((p: { offset: number; data: { n: number } }) => [p.offset, p.data.n])).toEqual(
        range(1, 5).map((n) => [n, n]),
      );
      const sentinel = await s.hub.publish(ch, { sentinel: true });
      const [live] = await again.waitForPushes(1, (m) => m.push === 'pub' && m.channel === ch);
      expect(live).toMatchObject({ offset: sentinel.offset, data: { sentinel: true } });
    });
  });
}

/** A presence store whose joins fail (asynchronously or synchronously). */
class FailingJoins implements PresenceStore {
  readonly inner = new MemoryPresenceStore();
  adds = 0;
  constructor(private readonly sync: boolean) {}
  add(_channel: string, _entry: PresenceEntry): Promise<{ userJoined: boolean }> {
    this.adds += 1;
    if (this.sync) throw new Error('presence down (sync)');
    return Promise.reject(new Error('presence down'));
  }
  remove(channel: string, entry: ClientInfo) {
    return this.inner.remove(channel, entry);
  }
  get(channel: string) {
    return this.inner.get(channel);
  }
  connectUser(user: string, client: string) {
    return this.inner.connectUser(user, client);
  }
  disconnectUser(user: string, client: string) {
    return this.inner.disconnectUser(user, client);
  }
  onlineUsers(users: readonly string[]) {
    return this.inner.onlineUsers(users);
  }
  close() {
    return this.inner.close();
  }
}

describe('a failing presence join', () => {
  for (const sync of [false, true]) {
    it(`(c) the subscribe is answered exactly once (${sync ? 'add throws' : 'add rejects'})`, async () => {
      const presence = new FailingJoins(sync);
      const s = await createTestServer({
        presence,
        logger: pino({ level: 'silent' }),
        namespaces: { room: { presence: true, joinLeave: true } },
      });
      const c = await s.client();
      const other = await s.client({ user: 'bob' });
      await other.subscribe('room:x');
      const subId = c.id();
      const pingId = c.id();
      const pong = c.expectReply(pingId);
      c.sendLines({ id: subId, method: 'subscribe', params: { channel: 'room:x' } }, { id: pingId, method: 'ping' });
      await pong;
      expect(presence.adds).toBeGreaterThanOrEqual(1);
      // One more round trip after the join failed (it runs in the background).
      const sentinelId = c.id();
      const last = c.expectReply(sentinelId);
      c.sendLines({ id: sentinelId, method: 'ping' });
      await last;
      const replies = c.messages.filter((m) => m.id === subId);
      expect(replies).toHaveLength(1);
      expect(replies[0]!.error).toBeUndefined();
      expect(replies[0]!.result.position.offset).toBe(0);
      // The subscription works.
      const pos = await s.hub.publish('room:x', { ok: true });
      await c.waitFor((m) => m.push === 'pub' && m.offset === pos.offset);
      expect(c.isOpen).toBe(true);
    });
  }
});
