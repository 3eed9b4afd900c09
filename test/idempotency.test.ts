import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer, sleep, TEST_API_KEY } from './support/harness.js';

afterEach(closeAllServers);

const anyPublish = { namespaces: { chat: { clientPublish: 'any' as const } } };

describe('idempotent publish', () => {
  it('client publish: the same key 3 times gives one publication and the same offset each time', async () => {
    const s = await createTestServer(anyPublish);
    const watcher = await s.client({ user: 'bob' });
    await watcher.subscribe('chat:idem');
    const c = await s.client();
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await c.publish('chat:idem', { text: 'hi' }, 'msg-1'));
    expect(results[0]).toEqual({ offset: 1, epoch: expect.any(String) });
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);

    // A later, different publication proves the duplicates would have arrived before it.
    const marker = await c.publish('chat:idem', { text: 'marker' }, 'msg-2');
    expect(marker.offset).toBe(2);
    await watcher.waitForPushes(1, (m) => m.push === 'pub' && m.data?.text === 'marker');
    expect(watcher.pubs('chat:idem').map((p) => p.offset)).toEqual([1, 2]);
    const h = await c.call('history', { channel: 'chat:idem' });
    expect(h.publications).toHaveLength(2);
  });

  it('three retries sent together (one frame) are applied once', async () => {
    const s = await createTestServer(anyPublish);
    const watcher = await s.client({ user: 'bob' });
    await watcher.subscribe('chat:burst');
    const c = await s.client();
    const ids = [c.id(), c.id(), c.id()];
    const replies = Promise.all(ids.map((id) => c.expectReply(id)));
    c.sendLines(...ids.map((id) => ({ id, method: 'publish', params: { channel: 'chat:burst', data: 1, idempotencyKey: 'same' } })));
    const got = await replies;
    expect(got.map((r) => r.result)).toEqual([got[0]!.result, got[0]!.result, got[0]!.result]);
    await s.hub.publish('chat:burst', 'marker');
    await watcher.waitForPushes(1, (m) => m.data === 'marker');
    expect(watcher.pubs('chat:burst')).toHaveLength(2);
  });

  it('hub.publish and the HTTP API honour the key too', async () => {
    const s = await createTestServer();
    const watcher = await s.client();
    await watcher.subscribe('chat:srv');
    const a = await s.hub.publish('chat:srv', 'x', { idempotencyKey: 'srv-1' });
    expect(await s.hub.publish('chat:srv', 'x', { idempotencyKey: 'srv-1' })).toEqual(a);

    const post = async (): Promise<Response> =>
      fetch(`${s.httpUrl}/api/publish`, {
        method: 'POST',
        headers: { authorization: `apikey ${TEST_API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ channel: 'chat:srv', data: 'y', idempotencyKey: 'http-1' }),
      });
    const r1 = await post();
    expect(r1.status).toBe(200);
    const b = await r1.json();
    expect(b).toEqual({ offset: a.offset + 1, epoch: a.epoch });
    for (let i = 0; i < 2; i++) expect(await (await post()).json()).toEqual(b);

    await s.hub.publish('chat:srv', 'marker');
    await watcher.waitForPushes(1, (m) => m.data === 'marker');
    expect(watcher.pubs('chat:srv').map((p) => p.data)).toEqual(['x', 'y', 'marker']);
  });

  it('the HTTP API refuses a missing or wrong API key with 401', async () => {
    const s = await createTestServer();
    const body = JSON.stringify({ channel: 'chat:x', data: 1 });
    const none = await fetch(`${s.httpUrl}/api/publish`, { method: 'POST', body });
    expect(none.status).toBe(401);
    const wrong = await fetch(`${s.httpUrl}/api/publish`, {
      method: 'POST',
      body,
      headers: { authorization: 'apikey wrong-key-0123456789' },
    });
    expect(wrong.status).toBe(401);
    const bearer = await fetch(`${s.httpUrl}/api/publish`, { method: 'POST', body, headers: { authorization: `Bearer ${TEST_API_KEY}` } });
    expect(bearer.status).toBe(401);
    const h = await s.hub.publish('chat:x', 'first');
    expect(h.offset).toBe(1); // nothing was published by the refused calls
  });

  it('a different key publishes again, and a key expires after the window', async () => {
    // A window the retries below fit in even on a loaded machine; the wait is measured from the first publish.
    const windowMs = 1_500;
    const s = await createTestServer({ ...anyPublish, limits: { idempotencyWindowMs: windowMs } });
    const c = await s.client();
    const firstAt = Date.now();
    const a = await c.publish('chat:w', 1, 'k');
    const b = await c.publish('chat:w', 1, 'k2');
    expect(b.offset).toBe(a.offset + 1);
    expect(await c.publish('chat:w', 1, 'k')).toEqual(a);
    expect(Date.now() - firstAt, 'the retry came within the window').toBeLessThan(windowMs);
    await sleep(firstAt + windowMs + 200 - Date.now());
    const later = await c.publish('chat:w', 1, 'k');
    expect(later.offset).toBe(b.offset + 1);
  });
});
