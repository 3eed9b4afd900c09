/**
 * Back-pressure: a publisher past its byte rate is told 111 (and stays connected) while the
 * subscribers of what it did publish are unharmed; a reply larger than one page is refused
 * with 106 rather than making its asker a slow consumer; the queue bound must leave room for
 * two of the largest messages.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createHub, OptionsError } from '../src/index.js';
import { closeAllServers, createTestServer, TEST_API_KEY, TEST_SECRET } from './support/harness.js';
import type { ProtocolClient, ServerMessage } from './support/protocol-client.js';
import { payload } from './support/core-helpers.js';

afterEach(closeAllServers);

describe('publish byte rate', () => {
  it('(a) 200 × 60 KB published flat out: 111s for the publisher, every acknowledged one reaches five subscribers in order', async () => {
    const s = await createTestServer();
    const ch = 'chat:firehose';
    const subscribers: ProtocolClient[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await s.client({ user: `reader${i}` });
      await c.subscribe(ch);
      subscribers.push(c);
    }
    const pub = await s.client({ user: 'writer' });
    await pub.subscribe(ch);

    const replies: Array<Promise<ServerMessage>> = [];
    for (let i = 0; i < 200; i++) {
      const id = pub.id();
      replies.push(pub.expectReply(id, 20_000));
      pub.sendRaw(JSON.stringify({ id, method: 'publish', params: { channel: ch, data: payload(i, 60_000) } }));
    }
    const answered = await Promise.all(replies);
    const acked = answered.filter((r) => r.result !== undefined);
    const refused = answered.filter((r) => r.error !== undefined);
    expect(acked.length + refused.length).toBe(200);
    expect(refused.length).toBeGreaterThan(0);
    expect(acked.length).toBeGreaterThan(0);
    expect(new Set(refused.map((r) => r.error!.code))).toEqual(new Set([111]));
    expect(refused.every((r) => r.error!.temporary === true)).toBe(true);
    expect(refused.some((r) => /publishBytesRate/.test(r.error!.message))).toBe(true);
    const ackedOffsets = acked.map((r) => r.result.offset as number);
    // Acknowledged in the order sent, offsets 1..N with no hole.
    expect(ackedOffsets).toEqual(Array.from({ length: acked.length }, (_, i) => i + 1));

    const sentinel = await s.hub.publish(ch, { sentinel: true });
    for (const c of [...subscribers, pub]) {
      await c.waitFor((m) => m.push === 'pub' && m.offset === sentinel.offset, 15_000);
      expect(c.pubs(ch).map((p) => p.offset)).toEqual([...ackedOffsets, sentinel.offset]);
      expect(c.closeInfo).toBeUndefined();
      expect(c.pushes('disconnect')).toEqual([]);
    }
    // The data of each one is the publication the publisher sent with that acknowledgement.
    const sentN = answered.map((r, i) => (r.result ? i : -1)).filter((i) => i >= 0);
    expect(
      subscribers[0]!
        .pubs(ch)
        .slice(0, -1)
        .map((p) => p.data.n),
    ).toEqual(sentN);
    expect(await pub.call('ping')).toEqual({});
  });
});

describe('a presence reply larger than one page', () => {
  it('(b) 200 connections with 1 KB of info, page 64 KiB: presence answers 106 and the asker stays connected', async () => {
    const s = await createTestServer({
      limits: { maxQueueBytes: 256 * 1024, connectionRatePerIp: { perSecond: 10_000, burst: 10_000 } },
      namespaces: { room: { presence: true } },
    });
    const ch = 'room:crowd';
    const info = { bio: 'b'.repeat(1024) };
    const crowd: Array<Promise<void>> = [];
    for (let i = 0; i < 200; i++) {
      crowd.push(
        (async () => {
          const c = await s.client({ user: `u${i}`, tokenExtra: { info } });
          await c.subscribe(ch);
        })(),
      );
    }
    await Promise.all(crowd);
    // The server side sees them all (HTTP is not paged by the connection queue).
    let count = 0;
    const deadline = Date.now() + 10_000;
    while (count < 200 && Date.now() < deadline) {
      const res = await fetch(`${s.httpUrl}/api/presence?channel=${ch}`, { headers: { authorization: `apikey ${TEST_API_KEY}` } });
      count = Object.keys(((await res.json()) as { clients: object }).clients).length;
    }
    expect(count).toBe(200);

    const asker = await s.client({ user: 'asker' });
    const reply = await asker.request('presence', { channel: ch });
    expect(reply.result).toBeUndefined();
    expect(reply.error?.code).toBe(106);
    expect(await asker.call('ping')).toEqual({});
    expect(asker.isOpen).toBe(true);
    // A small presence still answers.
    const few = await s.client({ user: 'few' });
    await few.subscribe('room:small');
    expect((await asker.call('presence', { channel: 'room:small' })).users).toEqual(['few']);
  });
});

describe('limits.maxQueueBytes bound', () => {
  it('(c) below 2 × maxMessageBytes + 4096 createHub throws an OptionsError naming limits.maxQueueBytes', async () => {
    const make = (maxQueueBytes: number, maxMessageBytes?: number) =>
      createHub({ auth: { secret: TEST_SECRET }, limits: { maxQueueBytes, ...(maxMessageBytes ? { maxMessageBytes } : {}) } });
    const defaultMin = 2 * 64 * 1024 + 4096;
    for (const [q, m] of [
      [defaultMin - 1, undefined],
      [1024, undefined],
      [2 * 8192 + 4095, 8192],
    ] as const) {
      let err: unknown;
      try {
        make(q, m);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(OptionsError);
      expect((err as Error).message).toContain('limits.maxQueueBytes');
    }
    const ok = make(defaultMin);
    await ok.close();
    const small = make(2 * 8192 + 4096, 8192);
    await small.close();
  });
});
