/**
 * Latest-value namespaces end to end (what the history and the transports do with them):
 * - a late joiner gets the current value of every key however long ago it was published, in
 *   pages when the keys do not fit one (the reply's `top` says up to where);
 * - GET /api/history answers the newest publication per key, flagged `latest: true`;
 * - a slow SSE stream keeps only the newest event per key and is never disconnected;
 * - nothing of a channel held back for a slow connection is sent after its unsubscribe;
 * - an emit before connect is answered with error 110, not dropped silently.
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer, TEST_API_KEY, until } from './support/harness.js';
import type { ServerMessage } from './support/protocol-client.js';

afterEach(closeAllServers);

const fast = { perSecond: 1e9, burst: 1e9 };
const OPEN_LIMITS = { publishBytesRate: fast, channelPublishBytesRate: fast, commandRate: fast, clientEventRate: fast };

describe('latest-value history end to end', () => {
  it('a late joiner gets every key however long ago it was published, paged; the HTTP history answers the latest per key', async () => {
    const s = await createTestServer({
      namespaces: { game: { delivery: 'latest', clientEvents: true, history: { size: 100 } } },
      limits: { ...OPEN_LIMITS, recoveryMaxPublications: 5, historyMaxLimit: 50 },
    } as never);
    const ch = 'game:map';
    const pub = await s.client({ user: 'pub', retainPubs: false });
    await pub.subscribe(ch);
    // Twelve keys once, then far more publications of one key than the page and the old window.
    for (let k = 0; k < 12; k++) await pub.call('publish', { channel: ch, key: `k${k}`, data: { k, v: 'first' } });
    for (let i = 0; i < 60; i++) await pub.call('publish', { channel: ch, key: 'k3', data: { k: 3, v: i } });
    const top = 72;

    const late = await s.client({ user: 'late' });
    const reply = await late.subscribe(ch);
    expect(reply.latest).toBe(true);
    // The first page: five keys, the oldest changes first; the rest follow as pushes up to `top`.
    expect(reply.publications).toHaveLength(5);
    expect(reply.top).toEqual({ offset: top, epoch: reply.position.epoch });
    expect(reply.position.offset).toBe(reply.publications.at(-1).offset);
    await late.waitFor((m) => m.push === 'pub' && m.offset === top, 10_000, 'the last page');
    const got = [...reply.publications, ...late.pubs(ch)].map((p: ServerMessage) => [p.data.k, p.data.v]);
    const expected = [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11].map((k) => [k, 'first']).concat([[3, 59]]);
    expect(got).toEqual(expected);
    // Live from the top on.
    await pub.call('publish', { channel: ch, key: 'k0', data: { k: 0, v: 'live' } });
    expect((await late.waitFor((m) => m.push === 'pub' && m.data.v === 'live')).offset).toBe(top + 1);

    // The HTTP history: the newest per key, flagged, oldest change first.
    const res = await fetch(`${s.httpUrl}/api/history?channel=${ch}`, { headers: { authorization: `apikey ${TEST_API_KEY}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      latest?: boolean;
      position: { offset: number };
      publications: Array<{ offset: number; data: { k: number; v: unknown }; info?: { key?: string } }>;
    };
    expect(body.latest).toBe(true);
    expect(body.position.offset).toBe(top + 1);
    expect(body.publications.map((p) => [p.data.k, p.data.v])).toEqual(expected.slice(1).concat([[0, 'live']]));
    expect(body.publications.at(-1)!.info?.key).toBe('k0');
    // After an offset: only the keys changed since.
    const since = await fetch(`${s.httpUrl}/api/history?channel=${ch}&since=${top - 1}&epoch=${reply.position.epoch}`, {
      headers: { authorization: `apikey ${TEST_API_KEY}` },
    });
    expect(((await since.json()) as typeof body).publications.map((p) => p.offset)).toEqual([top, top + 1]);
  });
});

describe('latest-value delivery to slow clients', () => {
  it('a slow SSE stream keeps only the newest event per key and is never disconnected', async () => {
    const s = await createTestServer({
      namespaces: { game: { delivery: 'latest', clientEvents: true, history: { size: 1000 } } },
      limits: { ...OPEN_LIMITS, maxQueueBytes: 256 * 1024, slowConsumerMs: 200 },
    } as never);
    const ch = 'game:sse';
    // A raw SSE request whose answer is not read until the end.
    const stalled = connect(s.port, '127.0.0.1');
    await new Promise<void>((resolve) => stalled.once('connect', () => resolve()));
    let text = '';
    let closed = false;
    stalled.setEncoding('utf8');
    stalled.on('data', (d: string) => (text += d));
    stalled.on('close', () => (closed = true));
    stalled.write(`GET /sse?channel=${ch}&token=${await s.token('slow')} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await until(() => text.includes('event: subscribed'), 'the stream to open');
    stalled.pause();

    const reader = await s.client({ user: 'reader' });
    await reader.subscribe(ch);
    const pub = await s.client({ user: 'pub', retainPubs: false });
    await pub.subscribe(ch);
    const KEYS = 6;
    const ROUNDS = 80;
    const pad = 'x'.repeat(30_000);
    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all(
        Array.from({ length: KEYS }, (_, k) => pub.call('publish', { channel: ch, key: `k${k}`, data: { k, round, pad } })),
      );
    }
    await pub.call('publish', { channel: ch, key: 'sentinel', data: { k: 'sentinel' } });
    await reader.waitFor((m) => m.push === 'pub' && m.data.k === 'sentinel', 30_000);
    expect(closed).toBe(false);

    stalled.resume();
    await until(() => text.includes('"k":"sentinel"'), 'the sentinel on the SSE stream', 30_000);
    expect(closed).toBe(false);
    const events = [...text.matchAll(new RegExp(`event: ${ch}\\ndata: (.*)\\n`, 'g'))].map(
      (m) => JSON.parse(m[1]!) as { k: number; round: number },
    );
    const rounds = new Map<number, number[]>();
    for (const e of events) if (typeof e.k === 'number') rounds.set(e.k, [...(rounds.get(e.k) ?? []), e.round]);
    for (let k = 0; k < KEYS; k++) {
      const seen = rounds.get(k)!;
      expect(seen.at(-1)).toBe(ROUNDS - 1);
      // Never an older value after a newer one.
      expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    }
    // Conflated: fewer sent than published.
    expect(events.length).toBeLessThan(KEYS * ROUNDS);
    stalled.destroy();
  });

  it('nothing held back of a channel is sent after its unsubscribe; an emit before connect gets error 110', async () => {
    const s = await createTestServer({
      namespaces: { game: { delivery: 'latest', clientEvents: true, history: { size: 1000 } } },
      limits: { ...OPEN_LIMITS, maxQueueBytes: 256 * 1024, slowConsumerMs: 200 },
    } as never);
    const ch = 'game:left';
    const other = 'game:other';
    const slow = await s.client({ user: 'slow' });
    await slow.subscribe(ch);
    await slow.subscribe(other);
    const pub = await s.client({ user: 'pub', retainPubs: false });
    await pub.subscribe(ch);
    slow.pauseReading();
    const KEYS = 6;
    const ROUNDS = 40;
    const pad = 'x'.repeat(30_000);
    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all(Array.from({ length: KEYS }, (_, k) => pub.call('publish', { channel: ch, key: `k${k}`, data: { round, pad } })));
    }
    // Unsubscribe, then (in order, after it) a publication on another latest-value channel:
    // it is held behind anything still held, so once it has come, nothing else is due.
    const unsubscribeId = slow.id();
    const unsubscribed = slow.expectReply(unsubscribeId, 30_000);
    slow.sendLines({ id: unsubscribeId, method: 'unsubscribe', params: { channel: ch } });
    const sentinel = slow.call('publish', { channel: other, key: 'sentinel', data: { done: true } }, 30_000);
    slow.resumeReading();
    await Promise.all([unsubscribed, sentinel]);
    await slow.waitFor((m) => m.push === 'pub' && m.channel === other, 30_000, 'the sentinel');
    const replyAt = slow.messages.findIndex((m) => m.push === undefined && m.id === unsubscribeId);
    expect(replyAt).toBeGreaterThan(0);
    const after = slow.messages.slice(replyAt).filter((m) => m.push === 'pub' && m.channel === ch);
    expect(after).toEqual([]);
    // Some were held back (the test exercised the outbox): fewer delivered than published.
    expect(slow.pubs(ch).length).toBeLessThan(KEYS * ROUNDS);
    expect(slow.closeInfo).toBeUndefined();

    // An emit before connect: an id-less error 110, and the connection goes on.
    const early = await s.client({ user: 'early', connect: false });
    early.sendLines({ method: 'emit', params: { channel: other, data: { x: 1 } } });
    const err = await early.waitFor((m) => m.error !== undefined && m.id === undefined, 5_000, 'the 110 error');
    expect(err.error!.code).toBe(110);
    await early.connect(await s.token('early'));
    await early.subscribe(other);
  });
});
