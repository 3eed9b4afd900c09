/**
 * SSE lifecycle: clients that leave during admission leave nothing behind, a stream whose
 * subscribe fails after its headers is ended (not left hanging), and channels without history
 * never report a failed recovery.
 */
import { connect } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBroker } from '../src/broker/memory.js';
import { MemoryIdempotencyLog } from '../src/history/idempotency-log.js';
import { MemoryHistoryLog } from '../src/history/memory-log.js';
import type { HistoryOptions, HistoryQuery, HistoryResult } from '../src/stream/types.js';
import { closeAllServers, createTestServer, TEST_API_KEY, until, type TestServer } from './support/harness.js';
import { openSse, type SseReader } from './support/core-helpers.js';

const readers: SseReader[] = [];
afterEach(async () => {
  for (const r of readers.splice(0)) await r.cancel();
  await closeAllServers();
});

async function sse(s: TestServer, query: string, headers: Record<string, string> = {}, user = 'alice'): Promise<SseReader> {
  const r = await openSse(`${s.httpUrl}/sse?${query}`, { authorization: `Bearer ${await s.token(user)}`, ...headers });
  readers.push(r);
  return r;
}

async function presenceCount(s: TestServer, channel: string): Promise<number> {
  const res = await fetch(`${s.httpUrl}/api/presence?channel=${channel}`, { headers: { authorization: `apikey ${TEST_API_KEY}` } });
  return Object.keys(((await res.json()) as { clients: object }).clients).length;
}

describe('SSE clients that leave during admission', () => {
  it('(a) 200 requests whose sockets are destroyed while onConnect is pending leave no connection, and the user is not refused', async () => {
    let entered = 0;
    let settled = 0;
    const s = await createTestServer({
      limits: { maxConnectionsPerUser: 3, connectionRatePerIp: { perSecond: 10_000, burst: 10_000 } },
      namespaces: { room: { presence: true } },
      hooks: {
        onConnect: async () => {
          entered += 1;
          await new Promise((r) => setTimeout(r, 200));
          settled += 1;
        },
      },
    });
    const ch = 'room:lobby';
    const token = await s.token('alice');
    const request = `GET /sse?channel=${ch} HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nAuthorization: Bearer ${token}\r\n\r\n`;
    // Destroyed at various moments: at once, during the token check, during the hook.
    const delays = [0, 1, 5, 20, 50, 100, 150, 180];
    await Promise.all(
      Array.from(
        { length: 200 },
        (_, i) =>
          new Promise<void>((resolve) => {
            const socket = connect(s.port, '127.0.0.1');
            socket.on('error', () => undefined);
            socket.on('close', () => resolve());
            socket.write(request, () => {
              const d = delays[i % delays.length]!;
              if (d === 0) socket.destroy();
              else setTimeout(() => socket.destroy(), d);
            });
          }),
      ),
    );
    // Every hook that started has finished (the point where a leak would be admitted).
    await until(() => entered > 0 && settled === entered, 'the pending hooks', 10_000);
    await until(() => s.hub.stats().connections === 0, 'no connection left', 5_000);
    expect(s.hub.stats().channels).toBe(0);
    expect(await presenceCount(s, ch)).toBe(0);

    // The real user: one SSE stream and two WebSocket connections (the cap is 3).
    const stream = await sse(s, `channel=${ch}`);
    expect(stream.response.status).toBe(200);
    await stream.until(() => stream.named('subscribed').length === 1, 'subscribed');
    for (let i = 0; i < 2; i++) {
      const c = await s.client({ user: 'alice' });
      expect(c.connectResult.user).toBe('alice');
    }
    await until(() => s.hub.stats().connections === 3, 'three connections');
    await expect.poll(() => presenceCount(s, ch)).toBe(1);
    await s.hub.publish(ch, { hello: true });
    await stream.until(() => stream.named(ch).length === 1, 'the publication');
  });
});

/** A broker whose history reads of some channels fail. */
class BrokenHistory extends MemoryBroker {
  readonly broken = new Set<string>();
  calls = 0;
  constructor() {
    super({ history: new MemoryHistoryLog(), idempotency: new MemoryIdempotencyLog() });
  }
  override async history(channel: string, query: HistoryQuery, options: HistoryOptions): Promise<HistoryResult> {
    this.calls += 1;
    if (this.broken.has(channel)) throw new Error(`history of ${channel} is down`);
    return super.history(channel, query, options);
  }
}

describe('an SSE stream whose subscribe fails after its headers', () => {
  it('(b) is ended with a disconnect event, and releases its connection and subscriptions', async () => {
    const broker = new BrokenHistory();
    broker.broken.add('chat:broken');
    const s = await createTestServer({ broker, logger: pino({ level: 'silent' }) });
    for (const query of ['channel=chat:broken', 'channel=chat:ok&channel=chat:broken']) {
      const stream = await sse(s, query);
      expect(stream.response.status).toBe(200);
      await stream.waitForEnd(5_000);
      expect(stream.ended).toBe(true);
      const disconnect = stream.named('disconnect');
      expect(disconnect).toHaveLength(1);
      expect(JSON.parse(disconnect[0]!.data)).toMatchObject({ code: 4006, reconnect: true });
      expect(stream.named('subscribed')).toEqual([]);
      await until(() => s.hub.stats().connections === 0 && s.hub.stats().channels === 0, 'the stream to be released');
    }
    // A healthy stream on the same server still works.
    const ok = await sse(s, 'channel=chat:ok');
    await ok.until(() => ok.named('subscribed').length === 1, 'subscribed');
    await s.hub.publish('chat:ok', { n: 1 });
    await ok.until(() => ok.named('chat:ok').length === 1, 'a publication');
    expect(ok.ended).toBe(false);
  });
});

describe('Last-Event-ID on a channel without history', () => {
  it('(c) reconnecting with the last id gives no recovery-failed; publications flow', async () => {
    const s = await createTestServer({ namespaces: { live: { history: { size: 0 } } } });
    const first = await sse(s, 'channel=live:ticker');
    await first.until(() => first.named('subscribed').length === 1, 'subscribed');
    await s.hub.publish('live:ticker', { n: 1 });
    await first.until(() => first.named('live:ticker').length === 1, 'first publication');
    const lastId = first.named('live:ticker')[0]!.id!;
    expect(lastId).toBe('1:.0');
    await first.cancel();

    const again = await sse(s, 'channel=live:ticker', { 'last-event-id': lastId });
    await again.until(() => again.named('subscribed').length === 1, 'subscribed again');
    await s.hub.publish('live:ticker', { sentinel: true });
    await again.until(() => again.named('live:ticker').length === 1, 'the sentinel');
    expect(again.named('recovery-failed')).toEqual([]);
    expect(again.events.map((e) => e.event)).toEqual(['subscribed', 'live:ticker']);
  });

  it('(c) with a history channel beside it: only a failed recovery of the history channel is reported', async () => {
    const s = await createTestServer({ namespaces: { live: { history: { size: 0 } } } });
    const pos = await s.hub.publish('chat:kept', { n: 1 });
    // A valid id for both: no recovery-failed at all, the missed publication is replayed.
    const id = `1:.0,${pos.epoch}.${pos.offset}`;
    const missed = await s.hub.publish('chat:kept', { n: 2 });
    const ok = await sse(s, 'channel=live:ticker&channel=chat:kept', { 'last-event-id': id });
    await ok.until(() => ok.named('subscribed').length === 1, 'subscribed');
    await ok.until(() => ok.named('chat:kept').length === 1, 'the missed publication');
    expect(ok.named('chat:kept')[0]!.id).toBe(`1:.0,${pos.epoch}.${missed.offset}`);
    await s.hub.publish('live:ticker', { sentinel: true });
    await ok.until(() => ok.named('live:ticker').length === 1, 'the sentinel');
    expect(ok.named('recovery-failed')).toEqual([]);

    // An id that does not parse: the history channel reports it, the other one does not.
    const bad = await sse(s, 'channel=live:ticker&channel=chat:kept', { 'last-event-id': 'garbage' });
    await bad.until(() => bad.named('subscribed').length === 1, 'subscribed');
    await s.hub.publish('live:ticker', { sentinel: 2 });
    await bad.until(() => bad.named('live:ticker').length === 1, 'the sentinel');
    expect(bad.named('recovery-failed').map((e) => (JSON.parse(e.data) as { channel: string }).channel)).toEqual(['chat:kept']);
  });
});
