/**
 * Paged recovery: a recovery larger than one reply (a quarter of limits.maxQueueBytes: 256 KiB
 * by default) comes as a first page in the subscribe reply and the rest as `pub` pushes, before
 * live ones — exact, and without ever making the client a slow consumer.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Subscription } from '../src/hub/subscription.js';
import { SwitchboardClient, type Publication as ClientPublication } from '../src/client/index.js';
import { closeAllServers, createTestServer, TEST_API_KEY, TEST_SECRET, until, type TestServer } from './support/harness.js';
import { afterReply, dataBytes, openSse, payload, range } from './support/core-helpers.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { signToken } from '../src/auth/token.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PAGE = 256 * 1024;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
  await closeAllServers();
});

const bigHistory = { namespaces: { chat: { history: { size: 1000 } } } };

/**
 * Publishes one message (so there is a stream), subscribes to learn the position, unsubscribes,
 * publishes `missed` messages of `bytes`, and resubscribes with since. Returns what arrived.
 */
async function missThenRecover(missed: number, bytes: number, options: Record<string, unknown> = bigHistory) {
  const s = await createTestServer(options);
  const ch = `chat:paged-${missed}-${bytes}`;
  const first = await s.hub.publish(ch, payload(0, 10));
  const c = await s.client();
  const sub = await c.subscribe(ch);
  expect(sub.position).toEqual(first);
  await c.call('unsubscribe', { channel: ch });
  for (let i = 1; i <= missed; i++) await s.hub.publish(ch, payload(i, bytes));
  const mark = c.messages.length;
  const id = c.id();
  const replyP = c.expectReply(id);
  c.sendRaw(JSON.stringify({ id, method: 'subscribe', params: { channel: ch, since: first } }));
  const reply = await replyP;
  const top = first.offset + missed;
  await c.waitForPubCount(ch, top - first.offset - (reply.result?.publications?.length ?? 0));
  // A live sentinel after the recovery.
  const sentinel = await s.hub.publish(ch, { sentinel: true });
  await c.waitFor((m) => m.push === 'pub' && m.channel === ch && m.offset === sentinel.offset);
  return { s, c, ch, first, reply, top, sentinel, pushes: afterReply(c, id, ch, mark).pushes };
}

describe('paged recovery over WebSocket', () => {
  it('(a) recovers 40 missed × 60 KB: first page in the reply, the rest as pushes, exactly once, in order', async () => {
    const { c, reply, pushes, first, top, sentinel } = await missThenRecover(40, 60_000);
    expect(reply.error).toBeUndefined();
    const r = reply.result;
    expect(r.recovered).toBe(true);
    expect(r.recoverable).toBe(true);
    const pubs = r.publications as Array<{ offset: number; data: { n: number } }>;
    expect(pubs.length).toBeGreaterThan(0);
    expect(pubs.length).toBeLessThan(40); // more than one reply's worth
    expect(dataBytes(pubs)).toBeLessThanOrEqual(PAGE);
    // The reply's position is where the client stands after it: the last offset it carries.
    expect(r.position).toEqual({ offset: pubs.at(-1)!.offset, epoch: first.epoch });
    const offsets = [...pubs.map((p) => p.offset), ...pushes.map((p) => p.offset!)];
    expect(offsets).toEqual([...range(first.offset + 1, top), sentinel.offset]);
    expect([...pubs.map((p) => p.data.n), ...pushes.slice(0, -1).map((p) => p.data.n)]).toEqual(range(1, 40));
    expect(pushes.at(-1)!.data).toEqual({ sentinel: true });
    expect(c.closeInfo).toBeUndefined();
    expect(c.isOpen).toBe(true);
    expect(await c.call('ping')).toEqual({});
  });

  it('(b) recovers 300 missed × 4 KB (exactly recoveryMaxPublications) in pages, exactly once, in order', async () => {
    const { c, reply, pushes, first, top, sentinel } = await missThenRecover(300, 4_000);
    const r = reply.result;
    expect(r.recovered).toBe(true);
    const pubs = r.publications as Array<{ offset: number }>;
    expect(pubs.length).toBeGreaterThan(0);
    expect(pubs.length).toBeLessThan(300);
    expect(dataBytes(pubs as Array<{ offset: number; data: unknown }>)).toBeLessThanOrEqual(PAGE);
    expect(r.position.offset).toBe(pubs.at(-1)!.offset);
    expect([...pubs.map((p) => p.offset), ...pushes.map((p) => p.offset!)]).toEqual([...range(first.offset + 1, top), sentinel.offset]);
    expect(c.closeInfo).toBeUndefined();
    expect(await c.call('ping')).toEqual({});
  });

  it('(d) publications made while a paged recovery is under way arrive exactly once, in order', async () => {
    // Count the catch-up buffer overflowing (it is then dropped and read back from history), so
    // the test is known to take that path too.
    const original = Subscription.prototype.buffer;
    let overflows = 0;
    const spy = vi.spyOn(Subscription.prototype, 'buffer').mockImplementation(function (this: Subscription, item, maxBytes) {
      const before = this.overflows;
      original.call(this, item, maxBytes);
      overflows += this.overflows - before;
    });
    cleanups.push(() => spy.mockRestore());
    // A smaller queue (256 KiB: 64 KiB pages, and the buffer's bound) makes the overflow certain.
    const s = await createTestServer({ ...bigHistory, limits: { maxQueueBytes: 256 * 1024 } });
    const ch = 'chat:paged-race';
    const first = await s.hub.publish(ch, payload(0, 10));
    const c = await s.client();
    await c.subscribe(ch);
    await c.call('unsubscribe', { channel: ch });
    for (let i = 1; i <= 40; i++) await s.hub.publish(ch, payload(i, 60_000));

    let publishing = true;
    let n = 40;
    const publisher = (async () => {
      // Mixed sizes, so some catch-up buffers overflow and are read back from history.
      while (publishing && n < 400) {
        n += 1;
        await s.hub.publish(ch, payload(n, n % 3 === 0 ? 30_000 : 500));
        if (n % 4 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    const mark = c.messages.length;
    const id = c.id();
    const replyP = c.expectReply(id);
    c.sendRaw(JSON.stringify({ id, method: 'subscribe', params: { channel: ch, since: first } }));
    const reply = await replyP;
    expect(reply.result?.recovered).toBe(true);
    // Keep publishing until the whole missed range has been paged to the client.
    const replyPubs = (reply.result.publications as unknown[]).length;
    await until(() => c.pubs(ch).filter((p) => p.offset! <= 41).length >= 40 - replyPubs || n >= 400, 'the catch-up to finish', 15_000);
    publishing = false;
    await publisher;
    const sentinel = await s.hub.publish(ch, { sentinel: true });
    await c.waitFor((m) => m.push === 'pub' && m.channel === ch && m.offset === sentinel.offset, 15_000);
    const { pushes } = afterReply(c, id, ch, mark);
    const offsets = [...(reply.result.publications as Array<{ offset: number }>).map((p) => p.offset), ...pushes.map((p) => p.offset!)];
    expect(offsets).toEqual(range(first.offset + 1, sentinel.offset));
    expect(c.pushes('unsubscribe')).toEqual([]);
    expect(c.closeInfo).toBeUndefined();
    expect(overflows).toBeGreaterThan(0);
  });

  it('(g) a subscriber dropped as a slow consumer recovers everything afterwards', async () => {
    const s = await createTestServer({
      namespaces: { chat: { history: { size: 1000 } } },
      limits: { recoveryMaxPublications: 1000, slowConsumerMs: 200 },
    });
    const ch = 'chat:slow';
    await s.hub.publish(ch, payload(0, 10));
    const slow = await s.client({ user: 'slow' });
    await slow.subscribe(ch);
    slow.pauseReading();
    const before = s.hub.stats().connections;
    let published = 0;
    // Publish until the server drops it (its queue over maxQueueBytes for slowConsumerMs, or 4 ×).
    while (s.hub.stats().connections === before && published < 900) {
      published += 1;
      await s.hub.publish(ch, payload(published, 60_000));
      if (published % 5 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await until(() => s.hub.stats().connections < before, 'the slow consumer to be dropped');
    const metrics = await (await fetch(`${s.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/switchboard_disconnects_total\{code="4001"\} 1/);
    slow.resumeReading();
    await slow.waitForClose();
    // Where the client stands: the last publication it got in full.
    const seen = slow.pubs(ch).map((p) => p.offset!);
    expect(seen).toEqual(range(2, 1 + seen.length));
    const subReply = slow.messages.find((m) => m.result?.position)!;
    const since = { offset: seen.at(-1) ?? subReply.result.position.offset, epoch: subReply.result.position.epoch };
    for (let i = 0; i < 3; i++) await s.hub.publish(ch, payload(1000 + i, 60_000)); // missed after the drop too

    const again = await s.client({ user: 'slow' });
    const id = again.id();
    const replyP = again.expectReply(id);
    again.sendRaw(JSON.stringify({ id, method: 'subscribe', params: { channel: ch, since } }));
    const reply = await replyP;
    expect(reply.result.recovered).toBe(true);
    const sentinel = await s.hub.publish(ch, { sentinel: true });
    await again.waitFor((m) => m.push === 'pub' && m.offset === sentinel.offset, 20_000);
    const { pushes } = afterReply(again, id, ch);
    const offsets = [...(reply.result.publications as Array<{ offset: number }>).map((p) => p.offset), ...pushes.map((p) => p.offset!)];
    expect(offsets).toEqual(range(since.offset + 1, sentinel.offset));
    expect(again.closeInfo).toBeUndefined();
  });
});

/** An SDK client subscribed to `channel` through `url`, that has received one publication. */
async function sdkSubscriber(s: TestServer, url: string, user: string, channel: string) {
  const client = new SwitchboardClient(url, {
    token: await signToken({ secret: TEST_SECRET, user, ttl: 3600 }),
    backoff: { minMs: 10, maxMs: 50, factor: 2 },
  });
  cleanups.push(() => client.disconnect());
  const got: ClientPublication[] = [];
  const failures: unknown[] = [];
  let subscribed = 0;
  const sub = client.subscribe(channel, {
    onPublication: (p) => got.push(p),
    onRecoveryFailed: (ctx) => failures.push(ctx),
    onSubscribed: () => (subscribed += 1),
  });
  client.connect();
  await sub.ready();
  await s.hub.publish(channel, payload(1, 10));
  await until(() => got.length === 1, 'the first publication');
  return { client, sub, got, failures, subscribes: (): number => subscribed };
}

describe('paged recovery through the SDK', () => {
  it('(c) after the connection is cut and comes back, onPublication gets every offset once, in order; no recovery failure', async () => {
    const s = await createTestServer(bigHistory);
    const gate = await new TcpProxy(s.port).start();
    cleanups.push(() => gate.close());
    const ch = 'chat:sdk-paged';
    const { client, sub, got, failures, subscribes } = await sdkSubscriber(s, `ws://127.0.0.1:${gate.port}/ws`, 'alice', ch);

    gate.refuse();
    await until(() => client.state !== 'connected' && s.hub.stats().connections === 0, 'the connection to drop');
    for (let i = 2; i <= 41; i++) await s.hub.publish(ch, payload(i, 60_000));
    gate.accept();
    await until(() => subscribes() === 2 && sub.state === 'subscribed', 'the resubscribe', 15_000);
    const sentinel = await s.hub.publish(ch, { sentinel: true });
    await until(() => got.some((p) => p.offset === sentinel.offset), 'the sentinel', 15_000);
    expect(got.map((p) => p.offset)).toEqual(range(1, sentinel.offset));
    expect(got.slice(0, 41).map((p) => (p.data as { n: number }).n)).toEqual(range(1, 41));
    expect(failures).toEqual([]);
    expect(client.state).toBe('connected');
  });

  it('(c′) after a server-side kick (POST /api/disconnect) and connect() again, the same holds', async () => {
    const s = await createTestServer(bigHistory);
    const ch = 'chat:sdk-kick';
    const { client, sub, got, failures, subscribes } = await sdkSubscriber(s, s.url, 'kicked', ch);
    const res = await fetch(`${s.httpUrl}/api/disconnect`, {
      method: 'POST',
      headers: { authorization: `apikey ${TEST_API_KEY}` },
      body: JSON.stringify({ user: 'kicked' }),
    });
    expect(res.status).toBe(200);
    await until(() => client.state === 'disconnected' && s.hub.stats().connections === 0, 'the kick');
    for (let i = 2; i <= 41; i++) await s.hub.publish(ch, payload(i, 60_000));
    client.connect();
    await until(() => subscribes() === 2 && sub.state === 'subscribed', 'the resubscribe', 15_000);
    const sentinel = await s.hub.publish(ch, { sentinel: true });
    await until(() => got.some((p) => p.offset === sentinel.offset), 'the sentinel', 15_000);
    expect(got.map((p) => p.offset)).toEqual(range(1, sentinel.offset));
    expect(failures).toEqual([]);
  });
});

describe('paged recovery over SSE', () => {
  it('(e) Last-Event-ID recovery of 40 × 60 KB: every event, in order, and the stream stays open', async () => {
    const s = await createTestServer(bigHistory);
    const ch = 'chat:sse-paged';
    const first = await s.hub.publish(ch, payload(0, 10));
    for (let i = 1; i <= 40; i++) await s.hub.publish(ch, payload(i, 60_000));
    const token = await s.token('alice');
    const sse = await openSse(`${s.httpUrl}/sse?channel=${ch}`, {
      authorization: `Bearer ${token}`,
      'last-event-id': `1:${first.epoch}.${first.offset}`,
    });
    cleanups.push(() => sse.cancel());
    expect(sse.response.status).toBe(200);
    await sse.until(() => sse.named('subscribed').length === 1, 'subscribed');
    await sse.until(() => sse.named(ch).length >= 40, '40 recovered events', 15_000);
    const sentinel = await s.hub.publish(ch, { sentinel: true });
    await sse.until(() => sse.named(ch).some((e) => e.data.includes('sentinel')), 'the sentinel');
    const events = sse.named(ch);
    expect(events.map((e) => (JSON.parse(e.data) as { n?: number }).n)).toEqual([...range(1, 40), undefined]);
    // Each event id names the position after it.
    expect(events.map((e) => e.id)).toEqual(range(first.offset + 1, sentinel.offset).map((o) => `1:${first.epoch}.${o}`));
    expect(sse.named('recovery-failed')).toEqual([]);
    expect(sse.named('disconnect')).toEqual([]);
    expect(sse.ended).toBe(false);
  });
});

describe('paged history', () => {
  it('(f) history with limit 1000 on 60 KB messages is paged; paging with since yields each publication once (WebSocket and HTTP)', async () => {
    const s = await createTestServer(bigHistory);
    const ch = 'chat:history-paged';
    const positions = [];
    for (let i = 1; i <= 20; i++) positions.push(await s.hub.publish(ch, payload(i, 60_000)));
    const top = positions.at(-1)!;
    const c = await s.client();

    // WebSocket
    const firstPage = await c.call('history', { channel: ch, limit: 1000 });
    expect(firstPage.position).toEqual(top);
    expect(firstPage.publications.length).toBeGreaterThan(0);
    expect(firstPage.publications.length).toBeLessThan(20);
    expect(dataBytes(firstPage.publications)).toBeLessThanOrEqual(PAGE);
    const seen: number[] = firstPage.publications.map((p: { offset: number }) => p.offset);
    let guard = 0;
    while (seen.at(-1)! < top.offset && guard++ < 50) {
      const page = await c.call('history', { channel: ch, limit: 1000, since: { offset: seen.at(-1)!, epoch: top.epoch } });
      expect(page.position).toEqual(top);
      expect(page.publications.length).toBeGreaterThan(0);
      expect(dataBytes(page.publications)).toBeLessThanOrEqual(PAGE);
      seen.push(...page.publications.map((p: { offset: number }) => p.offset));
    }
    expect(seen).toEqual(range(1, 20));
    expect(c.closeInfo).toBeUndefined();

    // HTTP
    const api = async (query: string): Promise<any> => {
      const res = await fetch(`${s.httpUrl}/api/history?${query}`, { headers: { authorization: `apikey ${TEST_API_KEY}` } });
      expect(res.status).toBe(200);
      return res.json();
    };
    const h1 = await api(`channel=${ch}&limit=1000`);
    expect(h1.position).toEqual(top);
    expect(h1.publications.length).toBeLessThan(20);
    expect(dataBytes(h1.publications)).toBeLessThanOrEqual(PAGE);
    const httpSeen: number[] = h1.publications.map((p: { offset: number }) => p.offset);
    guard = 0;
    while (httpSeen.at(-1)! < top.offset && guard++ < 50) {
      const page = await api(`channel=${ch}&limit=1000&since=${httpSeen.at(-1)}&epoch=${top.epoch}`);
      expect(page.publications.length).toBeGreaterThan(0);
      expect(dataBytes(page.publications)).toBeLessThanOrEqual(PAGE);
      httpSeen.push(...page.publications.map((p: { offset: number }) => p.offset));
    }
    expect(httpSeen).toEqual(range(1, 20));
  });

  for (const store of ['memory', 'sqlite'] as const) {
    it(`(f) pages are bounded in bytes for multi-byte data too (${store}): history and a recovery reply`, async () => {
      const dir = store === 'sqlite' ? mkdtempSync(join(tmpdir(), 'sb-core-paged-')) : undefined;
      if (dir) cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const s = await createTestServer({ ...bigHistory, ...(dir ? { dataDir: dir } : {}) });
      const ch = 'chat:history-utf8';
      // 21,000 × '€' is 63,000 bytes of UTF-8 (under maxMessageBytes) but 21,000 UTF-16 units.
      const first = await s.hub.publish(ch, { n: 0 });
      for (let i = 1; i <= 30; i++) await s.hub.publish(ch, { n: i, pad: '€'.repeat(21_000) });
      const utf8 = (pubs: Array<{ data: unknown }>): number => pubs.reduce((n, p) => n + Buffer.byteLength(JSON.stringify(p.data)), 0);
      const c = await s.client();
      const page = await c.call('history', { channel: ch, limit: 1000, since: first });
      expect(page.publications.length).toBeGreaterThan(0);
      expect(utf8(page.publications)).toBeLessThanOrEqual(PAGE);
      const rec = await c.subscribe(ch, first);
      expect(rec.recovered).toBe(true);
      expect(utf8(rec.publications)).toBeLessThanOrEqual(PAGE);
    });
  }
});
