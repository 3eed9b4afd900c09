import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer, type TestServer } from './support/harness.js';

afterEach(closeAllServers);

/** Two channels with overlapping offsets; every publication says which channel it belongs to. */
async function twoChannels(s: TestServer): Promise<{ a: { offset: number; epoch: string }; b: { offset: number; epoch: string } }> {
  let a = { offset: 0, epoch: '' };
  let b = { offset: 0, epoch: '' };
  for (let i = 0; i < 10; i++) a = await s.hub.publish('chat:a', { ch: 'a', i });
  for (let i = 0; i < 50; i++) b = await s.hub.publish('chat:b', { ch: 'b', i });
  for (let i = 0; i < 5; i++) await s.hub.publish('notifications:#alice', { ch: 'secret', i });
  return { a, b };
}

describe('forged recovery positions (BRIEF §5.6)', () => {
  it('negative, huge, fractional and beyond-the-top offsets give recovered: false and nothing else', async () => {
    const s = await createTestServer({ namespaces: { chat: {}, notifications: {} } });
    const { a } = await twoChannels(s);
    const forged = [-1, -5, -1e9, 1.5, 2 ** 53, 1e18, Number.MAX_VALUE, a.offset + 1, a.offset + 1000];
    for (const offset of forged) {
      const c = await s.client({ user: 'mallory' });
      const reply = await c.request('subscribe', { channel: 'chat:a', since: { offset, epoch: a.epoch } });
      if (reply.error) {
        expect(reply.error.code, `offset ${offset}`).toBe(107); // refusing the params outright is fine too
        continue;
      }
      expect(reply.result.recovered, `offset ${offset}`).toBe(false);
      expect(reply.result.publications, `offset ${offset}`).toEqual([]);
      expect(reply.result.position).toEqual(a);
      await c.close();
    }
  });

  it('another channel’s epoch, an empty or made-up epoch give recovered: false', async () => {
    const s = await createTestServer({ namespaces: { chat: {}, notifications: {} } });
    const { a, b } = await twoChannels(s);
    expect(a.epoch).not.toBe(b.epoch);
    for (const epoch of [b.epoch, '', 'AAAAAAAA', `${a.epoch}x`, a.epoch.toUpperCase() === a.epoch ? 'zz' : a.epoch.toUpperCase()]) {
      const c = await s.client({ user: 'mallory' });
      const r = await c.subscribe('chat:a', { offset: 2, epoch });
      expect(r.recovered, `epoch ${JSON.stringify(epoch)}`).toBe(false);
      expect(r.publications).toEqual([]);
      await c.close();
    }
  });

  it('recovery never returns another channel’s data, whatever the position', async () => {
    const s = await createTestServer({ namespaces: { chat: {}, notifications: {} } });
    const { a, b } = await twoChannels(s);
    const c = await s.client({ user: 'mallory' });
    const probes = [
      { offset: 0, epoch: a.epoch },
      { offset: 0, epoch: b.epoch },
      { offset: 5, epoch: b.epoch },
      { offset: 9, epoch: a.epoch },
      { offset: 40, epoch: b.epoch },
    ];
    for (const since of probes) {
      const r = await c.subscribe('chat:a', since);
      for (const p of r.publications) expect(p.data.ch).toBe('a');
      await c.call('unsubscribe', { channel: 'chat:a' });
    }
    const legit = await c.subscribe('chat:a', { offset: 0, epoch: a.epoch });
    expect(legit.recovered).toBe(true);
    expect(legit.publications.map((p: { data: { ch: string; i: number } }) => `${p.data.ch}${p.data.i}`)).toEqual(
      Array.from({ length: 10 }, (_, i) => `a${i}`),
    );
    // History with forged positions, too.
    for (const since of probes) {
      const reply = await c.request('history', { channel: 'chat:a', since, limit: 100 });
      for (const p of reply.result?.publications ?? []) expect(p.data.ch).toBe('a');
    }
    expect(JSON.stringify(c.messages)).not.toContain('"secret"');
    expect(JSON.stringify(c.messages)).not.toContain('"ch":"b"');
  });

  it('recovery on a user-limited channel is refused to other users, whatever the position', async () => {
    const s = await createTestServer({ namespaces: { chat: {}, notifications: {} } });
    await twoChannels(s);
    const alice = await s.client({ user: 'alice' });
    const pos = (await alice.subscribe('notifications:#alice')).position;
    const mallory = await s.client({ user: 'mallory' });
    for (const since of [pos, { offset: 0, epoch: pos.epoch }, { offset: -1, epoch: pos.epoch }]) {
      const r = await mallory.request('subscribe', { channel: 'notifications:#alice', since });
      expect(r.error?.code).toBe(103);
      const h = await mallory.request('history', { channel: 'notifications:#alice', since });
      expect(h.error?.code).toBe(103);
    }
    expect(JSON.stringify(mallory.messages)).not.toContain('secret');
  });

  it('malformed positions are bad requests (107), never a crash', async () => {
    const s = await createTestServer({ namespaces: { chat: {}, notifications: {} } });
    const { a } = await twoChannels(s);
    const c = await s.client({ user: 'mallory' });
    const bad: unknown[] = [
      { offset: '3', epoch: a.epoch },
      { offset: 3 },
      { epoch: a.epoch },
      { offset: 3, epoch: a.epoch, extra: 1 },
      { offset: 3, epoch: 'e'.repeat(100_00) },
      { offset: null, epoch: a.epoch },
      { offset: [3], epoch: a.epoch },
      { offset: { $gt: 0 }, epoch: a.epoch },
      'since',
      [3, a.epoch],
      null,
    ];
    for (const since of bad) {
      const r = await c.request('subscribe', { channel: 'chat:a', since });
      expect(r.error?.code, JSON.stringify(since)).toBe(107);
    }
    expect(await c.call('ping', {})).toEqual({});
    const ok = await c.subscribe('chat:a', { offset: 8, epoch: a.epoch });
    expect(ok.recovered).toBe(true);
    expect(ok.publications.map((p: { offset: number }) => p.offset)).toEqual([9, 10]);
  });
});
