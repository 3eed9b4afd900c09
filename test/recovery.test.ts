import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer, sleep } from './support/harness.js';

afterEach(closeAllServers);

const bigHistory = {
  namespaces: { chat: { history: { size: 2000 } } },
  limits: { recoveryMaxPublications: 1000 },
};

describe('recovery', () => {
  it('recovers exactly the 1000 publications missed while disconnected, in order', async () => {
    const s = await createTestServer(bigHistory);
    const ch = 'chat:recover';
    const first = await s.client();
    const sub = await first.subscribe(ch);
    expect(sub.position.offset).toBe(0);
    expect(sub.recoverable).toBe(true);
    expect(sub.recovered).toBeUndefined();
    expect(sub.publications).toEqual([]);

    // A few live publications, tracked the way the protocol says a client tracks its position.
    for (let i = 0; i < 5; i++) await s.hub.publish(ch, { live: i });
    const live = await first.waitForPushes(5, (m) => m.push === 'pub' && m.channel === ch);
    expect(live.map((p) => p.offset)).toEqual([1, 2, 3, 4, 5]);
    // The first publication of the new stream names its epoch (the client stood at 0 of its own).
    expect(live[0]!.epoch).toEqual(expect.any(String));
    const last = { offset: live[4]!.offset!, epoch: live[0]!.epoch as string };
    await first.close();

    for (let i = 0; i < 1000; i++) await s.hub.publish(ch, { n: i });

    const again = await s.client();
    const rec = await again.subscribe(ch, last);
    expect(rec.recovered).toBe(true);
    expect(rec.position).toEqual({ offset: 1005, epoch: last.epoch });
    expect(rec.publications).toHaveLength(1000);
    expect(rec.publications.map((p: { offset: number }) => p.offset)).toEqual(Array.from({ length: 1000 }, (_, i) => 6 + i));
    expect(rec.publications.map((p: { data: { n: number } }) => p.data.n)).toEqual(Array.from({ length: 1000 }, (_, i) => i));

    // Live pushes continue right after the recovered ones: no gap, no duplicate.
    await s.hub.publish(ch, { after: true });
    const next = await again.waitForPushes(1, (m) => m.push === 'pub' && m.channel === ch);
    expect(next[0]).toMatchObject({ offset: 1006, data: { after: true } });
    // Sentinel: a later publication arrives; nothing (a duplicate) came between the two.
    await s.hub.publish(ch, { sentinel: true });
    await again.waitFor((m) => m.push === 'pub' && m.channel === ch && m.data?.sentinel === true);
    expect(again.pubs(ch).map((m) => m.offset)).toEqual([1006, 1007]);
  });

  it('gives recovered: false and no publications when more were missed than the limit', async () => {
    const s = await createTestServer(bigHistory);
    const ch = 'chat:overflow';
    const c = await s.client();
    const sub = await c.subscribe(ch);
    await c.close();
    for (let i = 0; i < 1001; i++) await s.hub.publish(ch, { n: i });
    const again = await s.client();
    const rec = await again.subscribe(ch, sub.position);
    expect(rec.recovered).toBe(false);
    expect(rec.publications).toEqual([]);
    expect(rec.position.offset).toBe(1001);
    expect(rec.position.epoch).not.toBe(sub.position.epoch); // the stream created since
  });

  it('recovers at exactly the limit (1000 missed, limit 1000)', async () => {
    const s = await createTestServer(bigHistory);
    const ch = 'chat:edge';
    const c = await s.client();
    const sub = await c.subscribe(ch);
    for (let i = 0; i < 1000; i++) await s.hub.publish(ch, i);
    const rec = await (await s.client({ user: 'bob' })).subscribe(ch, sub.position);
    expect(rec.recovered).toBe(true);
    expect(rec.publications).toHaveLength(1000);
  });

  it('gives recovered: false when history no longer holds the missed publications', async () => {
    const s = await createTestServer({ namespaces: { chat: { history: { size: 10 } } } });
    const ch = 'chat:trimmed';
    for (let i = 0; i < 3; i++) await s.hub.publish(ch, i);
    const c = await s.client();
    const sub = await c.subscribe(ch);
    for (let i = 0; i < 20; i++) await s.hub.publish(ch, i); // 20 missed; history keeps 10
    const rec = await (await s.client()).subscribe(ch, sub.position);
    expect(rec.recovered).toBe(false);
    expect(rec.publications).toEqual([]);
  });

  it('gives recovered: false with a wrong epoch, even when offsets line up', async () => {
    const s = await createTestServer(bigHistory);
    const ch = 'chat:epoch';
    for (let i = 0; i < 10; i++) await s.hub.publish(ch, i);
    const c = await s.client();
    const rec = await c.subscribe(ch, { offset: 5, epoch: 'not-the-epoch' });
    expect(rec.recovered).toBe(false);
    expect(rec.publications).toEqual([]);
    expect(rec.position.offset).toBe(10);
    expect(rec.position.epoch).not.toBe('not-the-epoch');
  });

  it('recovers nothing missed as recovered: true with no publications', async () => {
    const s = await createTestServer(bigHistory);
    const ch = 'chat:none';
    const pos = await s.hub.publish(ch, 'x');
    const rec = await (await s.client()).subscribe(ch, pos);
    expect(rec).toMatchObject({ recovered: true, publications: [], position: pos });
  });

  it('has no gap and no duplicate when publications race a recovering subscribe', async () => {
    const s = await createTestServer(bigHistory);
    const ch = 'chat:race';
    const start = await s.hub.publish(ch, { n: -1 });
    let publishing = true;
    let n = 0;
    // Bounded, so that however slow the machine, what the subscribers missed stays recoverable.
    const publisher = (async () => {
      while (publishing && n < 900) {
        await s.hub.publish(ch, { n: n++ });
        if (n % 10 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    const clients = [];
    for (let k = 0; k < 5; k++) clients.push(await s.client({ user: `u${k}` }));
    const replies = await Promise.all(clients.map((c) => c.subscribe(ch, start)));
    await sleep(30);
    publishing = false;
    await publisher;
    const top = (await s.hub.publish(ch, { n: 'end' })).offset;
    for (const [k, c] of clients.entries()) {
      const reply = replies[k];
      expect(reply.recovered).toBe(true);
      await c.waitForPushes(1, (m) => m.push === 'pub' && m.offset === top);
      const seen = [...reply.publications.map((p: { offset: number }) => p.offset), ...c.pubs(ch).map((p) => p.offset)];
      expect(seen).toEqual(Array.from({ length: top - start.offset }, (_, i) => start.offset + 1 + i));
    }
  });

  it('without since: no recovered field and no publications; channels without history are not recoverable', async () => {
    const s = await createTestServer({ namespaces: { chat: {}, live: { history: { size: 0 } } } });
    await s.hub.publish('chat:a', 1);
    const c = await s.client();
    const a = await c.subscribe('chat:a');
    expect(a.recovered).toBeUndefined();
    expect(a.publications).toEqual([]);
    expect(a.position.offset).toBe(1);
    const pub = await s.hub.publish('live:a', 1);
    expect(pub).toEqual({ offset: 0, epoch: '' });
    const l = await c.subscribe('live:a');
    expect(l.recoverable).toBe(false);
    const l2 = await (await s.client()).subscribe('live:a', { offset: 0, epoch: '' });
    expect(l2.recovered).toBe(false);
    expect(l2.publications).toEqual([]);
  });

  it('refuses recovery in a namespace with recover: false', async () => {
    const s = await createTestServer({ namespaces: { chat: { recover: false } } });
    const pos = await s.hub.publish('chat:norec', 1);
    await s.hub.publish('chat:norec', 2);
    const c = await s.client();
    const r = await c.subscribe('chat:norec', pos);
    expect(r.recoverable).toBe(false);
    expect(r.recovered).toBe(false);
    expect(r.publications).toEqual([]);
  });
});
