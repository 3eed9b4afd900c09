/**
 * Latest-value namespaces (`delivery: "latest"`) and ephemeral client events (`emit`):
 * - a subscriber whose socket stops reading is never disconnected, and once it reads again it
 *   ends with the newest publication and the newest client event of every key (a sentinel
 *   published last tells when everything has arrived), having been sent fewer than all;
 * - a subscribe (with or without `since`) gets the latest publication per key, flagged
 *   `latest: true`, not a replay; history answers the latest per key too;
 * - `key` is refused outside latest-value namespaces;
 * - client events reach the other subscribers (not the sender), need `clientEvents` and a
 *   subscription, are answered only when sent with an id, and past `limits.clientEventRate`
 *   are dropped (the sender stays connected).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer, until } from './support/harness.js';
import type { ProtocolClient, ServerMessage } from './support/protocol-client.js';

afterEach(closeAllServers);

const GAME = { delivery: 'latest', clientEvents: true, history: { size: 1000 } };
const fast = { perSecond: 1e9, burst: 1e9 };

/** Every message of `kind` for each key, in arrival order. */
function byKey(c: ProtocolClient, kind: string): Map<string, ServerMessage[]> {
  const out = new Map<string, ServerMessage[]>();
  for (const m of c.messages) {
    if (m.push !== kind) continue;
    const key = m.info?.key ?? '';
    out.set(key, [...(out.get(key) ?? []), m]);
  }
  return out;
}

describe('latest-value channels', () => {
  it('a subscriber that stops reading is never disconnected and ends with the newest value of every key', async () => {
    const s = await createTestServer({
      namespaces: { game: GAME },
      limits: {
        maxQueueBytes: 256 * 1024,
        slowConsumerMs: 200,
        publishBytesRate: fast,
        channelPublishBytesRate: fast,
        commandRate: fast,
        clientEventRate: fast,
      },
    } as never);
    const ch = 'game:room';
    const slow = await s.client({ user: 'slow' });
    await slow.subscribe(ch);
    const reader = await s.client({ user: 'reader' });
    await reader.subscribe(ch);
    const pub = await s.client({ user: 'pub' });
    await pub.subscribe(ch);
    (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();

    const KEYS = 8;
    const ROUNDS = 100;
    const pad = 'x'.repeat(30_000);
    for (let round = 0; round < ROUNDS; round++) {
      const replies: Array<Promise<unknown>> = [];
      for (let k = 0; k < KEYS; k++) {
        replies.push(pub.call('publish', { channel: ch, key: `k${k}`, data: { round, pad } }));
        pub.sendLines({ method: 'emit', params: { channel: ch, key: `e${k % 3}`, data: { round, pad: pad.slice(0, 10_000) } } });
      }
      await Promise.all(replies);
    }
    // Published last: once it has arrived, everything before it has.
    await pub.call('publish', { channel: ch, key: 'sentinel', data: { done: true } });
    // (The reader may be conflated too when its socket backs up: it waits for the sentinel.)
    await reader.waitFor((m) => m.push === 'pub' && m.info?.key === 'sentinel', 30_000);
    expect(slow.closeInfo).toBeUndefined();

    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await slow.waitFor((m) => m.push === 'pub' && m.info?.key === 'sentinel', 30_000);
    // Events travel apart from publications: the newest of each has come once one of its
    // keys shows the last round (they are sent newest-last per key).
    await slow.waitFor((m) => m.push === 'emit' && m.data.round === ROUNDS - 1, 30_000);
    const pubs = byKey(slow, 'pub');
    for (let k = 0; k < KEYS; k++) {
      const rounds = pubs.get(`k${k}`)!.map((m) => m.data.round as number);
      expect(rounds.at(-1)).toBe(ROUNDS - 1);
      // Never an older value after a newer one.
      expect([...rounds].sort((a, b) => a - b)).toEqual(rounds);
    }
    // Conflation happened: fewer than all were sent.
    expect(slow.pubs(ch).length).toBeLessThan(KEYS * ROUNDS);
    const events = byKey(slow, 'emit');
    for (let k = 0; k < 3; k++) {
      const rounds = events.get(`e${k}`)!.map((m) => m.data.round as number);
      expect([...rounds].sort((a, b) => a - b)).toEqual(rounds);
    }
    await until(() => [0, 1, 2].every((k) => byKey(slow, 'emit').get(`e${k}`)?.at(-1)?.data.round === ROUNDS - 1), 'the newest event of every key');
    expect(slow.closeInfo).toBeUndefined();
    expect(slow.pushes('disconnect')).toEqual([]);
    expect((await slow.request('ping')).result).toEqual({});
  });

  it('a subscribe, with or without since, gets the latest publication per key (latest: true); history too', async () => {
    const s = await createTestServer({ namespaces: { game: GAME }, limits: { commandRate: fast } } as never);
    const ch = 'game:board';
    const pub = await s.client({ user: 'pub' });
    const first = await pub.subscribe(ch);
    for (let i = 0; i < 50; i++) await pub.publish(ch, { i });
    for (let i = 0; i < 40; i++) await pub.call('publish', { channel: ch, key: `p${i % 4}`, data: { i } });

    const late = await s.client({ user: 'late' });
    const fresh = await late.subscribe(ch);
    expect(fresh.latest).toBe(true);
    expect(fresh.position.offset).toBe(90);
    // The newest without a key (the channel's) and the newest of each key, in offset order.
    expect(fresh.publications.map((p: ServerMessage) => [p.info?.key ?? '', p.data.i])).toEqual([
      ['', 49],
      ['p0', 36],
      ['p1', 37],
      ['p2', 38],
      ['p3', 39],
    ]);
    await late.call('unsubscribe', { channel: ch });

    const back = await late.subscribe(ch, { offset: 3, epoch: first.position.epoch });
    expect(back).toMatchObject({ latest: true, recovered: true, position: { offset: 90 } });
    expect(back.publications).toHaveLength(5);
    // Live from the top on.
    await pub.call('publish', { channel: ch, key: 'p0', data: { i: 90 } });
    const live = await late.waitFor((m) => m.push === 'pub' && m.channel === ch);
    expect(live.offset).toBe(91);

    const history = await late.call('history', { channel: ch, limit: 20 });
    expect(history.latest).toBe(true);
    // Every key the history holds (the keyless one too), however many offsets ago.
    expect(history.publications.map((p: ServerMessage) => p.data.i)).toEqual([49, 37, 38, 39, 90]);

    // `key` belongs to latest-value namespaces.
    await pub.subscribe('chat:x');
    expect(await pub.errorCode('publish', { channel: 'chat:x', key: 'k', data: 1 })).toBe(107);
  });
});

describe('client events (emit)', () => {
  it('reach the other subscribers, not the sender; need clientEvents and a subscription; past the rate they are dropped', async () => {
    const s = await createTestServer({
      namespaces: { game: GAME },
      limits: { clientEventRate: { perSecond: 1, burst: 20 } },
    } as never);
    const ch = 'game:cursors';
    const a = await s.client({ user: 'a' });
    const b = await s.client({ user: 'b' });
    const c = await s.client({ user: 'c' });
    for (const x of [a, b, c]) await x.subscribe(ch);

    a.sendLines({ method: 'emit', params: { channel: ch, key: 'cursor', data: { x: 1, y: 2 } } });
    const got = await b.waitFor((m) => m.push === 'emit');
    expect(got).toEqual({ push: 'emit', channel: ch, data: { x: 1, y: 2 }, info: { user: 'a', client: a.connectResult.client, key: 'cursor' } });
    expect(got.offset).toBeUndefined();
    // With an id it is answered.
    expect(await a.call('emit', { channel: ch, data: 'acked' })).toEqual({});

    // 100 at once: the burst passes, the rest is dropped; the sender is not disconnected.
    for (let i = 0; i < 100; i++) a.sendLines({ method: 'emit', params: { channel: ch, key: `k${i}`, data: { i } } });
    c.sendLines({ method: 'emit', params: { channel: ch, data: 'sentinel' } });
    await b.waitFor((m) => m.push === 'emit' && m.data === 'sentinel');
    await a.waitFor((m) => m.push === 'emit' && m.data === 'sentinel');
    const fromA = b.pushes('emit').filter((m) => m.info.user === 'a');
    expect(fromA.length).toBeGreaterThan(5);
    expect(fromA.length).toBeLessThan(40);
    // The sender never sees its own.
    expect(a.pushes('emit').filter((m) => m.info.user === 'a')).toEqual([]);
    expect((await a.request('ping')).result).toEqual({});

    // Not subscribed: 112; a namespace without clientEvents: 108 (id-less errors).
    const d = await s.client({ user: 'd' });
    d.sendLines({ method: 'emit', params: { channel: ch, data: 1 } });
    expect((await d.waitFor((m) => m.error !== undefined)).error?.code).toBe(112);
    await d.subscribe('chat:room');
    expect(await d.errorCode('emit', { channel: 'chat:room', data: 1 })).toBe(108);
    d.sendLines({ method: 'emit', params: { channel: ch } });
    expect((await d.waitFor((m) => m.error?.code === 107)).id).toBeUndefined();
  });
});
