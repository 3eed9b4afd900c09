/**
 * The HTTP API's publishing routes: POST /api/publish, POST /api/broadcast and GET /api/history
 * (their authentication and validation are in test/http-api.test.ts, with the other routes).
 */
import { describe, expect, it } from 'vitest';
import { createHub } from '../src/index.js';
import { errorOf, KEY, SECRET, useHttpApi, type Json } from './support/http-api.js';

const { call, client } = useHttpApi();

describe('HTTP API routes', () => {
  it('POST /api/publish reaches subscribers and honours idempotency keys', async () => {
    const alice = await client('alice');
    await alice.subscribe('room:pub');
    const res = await call('POST', '/api/publish', { body: { channel: 'room:pub', data: { text: 'hi' }, idempotencyKey: 'k1' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ offset: 1, epoch: expect.any(String) });
    const pub = await alice.pub('room:pub');
    expect(pub).toMatchObject({ offset: 1, data: { text: 'hi' } });

    const again = await call('POST', '/api/publish', { body: { channel: 'room:pub', data: { text: 'hi' }, idempotencyKey: 'k1' } });
    expect(again.body).toEqual(res.body);
    await call('POST', '/api/publish', { body: { channel: 'room:pub', data: 'second' } });
    const second = await alice.waitFor((m) => m.push === 'pub' && m.data === 'second');
    expect(second.offset).toBe(2);
    expect(alice.messages.filter((m) => m.push === 'pub')).toHaveLength(2);
  });

  it('POST /api/broadcast publishes to every channel; a failing channel fails alone', async () => {
    const a = await client('bc-a');
    const b = await client('bc-b');
    await a.subscribe('room:bc1');
    await b.subscribe('room:bc2');
    const res = await call('POST', '/api/broadcast', {
      body: { channels: ['room:bc1', 'nope:x', 'room:bc2', 'bad name'], data: { n: 7 } },
    });
    expect(res.status).toBe(200);
    const results = res.body.results as Json[];
    expect(results.map((r) => r.channel)).toEqual(['room:bc1', 'nope:x', 'room:bc2', 'bad name']);
    expect(results[0]).toEqual({ channel: 'room:bc1', offset: 1, epoch: expect.any(String) });
    expect(results[1]).toMatchObject({ channel: 'nope:x', error: { code: 102 } });
    expect(results[2]).toEqual({ channel: 'room:bc2', offset: 1, epoch: expect.any(String) });
    expect(results[3]).toMatchObject({ channel: 'bad name', error: { code: 107 } });
    expect(await a.pub('room:bc1')).toMatchObject({ offset: 1, data: { n: 7 } });
    expect(await b.pub('room:bc2')).toMatchObject({ offset: 1, data: { n: 7 } });
  });

  it('GET /api/history returns what was published', async () => {
    const sent = [{ i: 1 }, 'two', [3], null];
    let epoch = '';
    for (const data of sent) {
      const r = await call('POST', '/api/publish', { body: { channel: 'room:hist', data } });
      epoch = r.body.epoch as string;
    }
    const all = await call('GET', '/api/history?channel=room:hist');
    expect(all.status).toBe(200);
    expect(all.body).toEqual({
      position: { offset: 4, epoch },
      publications: sent.map((data, i) => ({ offset: i + 1, data })),
    });

    const after = await call('GET', `/api/history?channel=room:hist&since=2&epoch=${epoch}`);
    expect(after.body.publications).toEqual([
      { offset: 3, data: [3] },
      { offset: 4, data: null },
    ]);
    const latest = await call('GET', '/api/history?channel=room:hist&limit=1');
    expect(latest.body.publications).toEqual([{ offset: 4, data: null }]);
    const top = await call('GET', '/api/history?channel=room:hist&limit=0');
    expect(top.body).toEqual({ position: { offset: 4, epoch }, publications: [] });

    const wrongEpoch = await call('GET', '/api/history?channel=room:hist&since=2&epoch=notTheEpoch');
    expect(wrongEpoch.status).toBe(409);
    expect(errorOf(wrongEpoch.body)).toMatchObject({ code: 107, message: expect.stringMatching(/^epoch:/) });
  });

  it('GET /api/history answers 409 (108) where history is off', async () => {
    const off = createHub({
      auth: { secret: SECRET },
      apiKey: KEY,
      namespaces: { live: { history: { size: 0 } } },
      limits: { shutdownSpreadMs: 0 },
    });
    const { httpUrl: base } = await off.listen(0, '127.0.0.1');
    try {
      const res = await call('GET', '/api/history?channel=live:x', { base });
      expect(res.status).toBe(409);
      expect(errorOf(res.body).code).toBe(108);
    } finally {
      await off.close();
    }
  });
});
