/**
 * The HTTP API: authentication and validation of every route, and the routes other than
 * publishing — presence, disconnect, unsubscribe, channels, info and the OpenAPI document
 * (POST /api/publish, /api/broadcast and GET /api/history are in test/http-api-publish.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { createHub } from '../src/index.js';
import { errorOf, KEY, SECRET, useHttpApi, VALID, VERSION, type Json } from './support/http-api.js';

const { call, client } = useHttpApi();

describe('HTTP API authentication', () => {
  for (const route of VALID) {
    it(`${route.method} ${route.path.split('?')[0]} needs the right key`, async () => {
      for (const auth of [null, 'apikey wrong-key-wrong-key', `Bearer ${KEY}`, `apikey ${KEY}x`, 'apikey ']) {
        const res = await call(route.method, route.path, { body: route.body, auth });
        expect(res.status, `auth=${String(auth)}`).toBe(401);
        expect(errorOf(res.body).code).toBe(101);
      }
      const ok = await call(route.method, route.path, { body: route.body });
      expect(ok.status).toBe(200);
    });
  }

  it('refuses every call when no apiKey is configured', async () => {
    const keyless = createHub({ auth: { secret: SECRET }, limits: { shutdownSpreadMs: 0 } });
    const { httpUrl: base } = await keyless.listen(0, '127.0.0.1');
    try {
      for (const route of VALID) {
        const res = await call(route.method, route.path, { body: route.body, base });
        expect(res.status).toBe(401);
        expect(errorOf(res.body).message).toMatch(/apiKey/);
      }
    } finally {
      await keyless.close();
    }
  });

  it('answers unknown /api routes with 404 JSON, and the wrong method with 405', async () => {
    expect((await call('GET', '/api/nope', { auth: null })).status).toBe(401);
    const missing = await call('GET', '/api/nope');
    expect(missing.status).toBe(404);
    expect(errorOf(missing.body).code).toBe(104);
    const wrong = await call('GET', '/api/publish');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    expect((await call('POST', '/api/info', { body: {} })).status).toBe(405);
  });
});

describe('HTTP API validation', () => {
  const bad: Array<{ path: string; raw?: string; body?: unknown; field: string }> = [
    { path: '/api/publish', raw: '{"channel":', field: 'body' },
    { path: '/api/publish', raw: '', field: 'body' },
    { path: '/api/publish', body: [1], field: 'body' },
    { path: '/api/publish', body: { data: 1 }, field: 'channel' },
    { path: '/api/publish', body: { channel: 'room:a' }, field: 'data' },
    { path: '/api/publish', body: { channel: 7, data: 1 }, field: 'channel' },
    { path: '/api/publish', body: { channel: 'room:a', data: 1, extra: true }, field: 'extra' },
    { path: '/api/publish', body: { channel: 'room:a', data: 1, idempotencyKey: '' }, field: 'idempotencyKey' },
    { path: '/api/publish', body: { channel: 'bad channel', data: 1 }, field: 'channel' },
    { path: '/api/publish', body: { channel: 'room:a', data: 'x'.repeat(70_000) }, field: 'body' },
    { path: '/api/broadcast', raw: 'nope', field: 'body' },
    { path: '/api/broadcast', body: { channels: [], data: 1 }, field: 'channels' },
    { path: '/api/broadcast', body: { channels: 'room:a', data: 1 }, field: 'channels' },
    { path: '/api/broadcast', body: { channels: ['room:a', 5], data: 1 }, field: 'channels.1' },
    { path: '/api/broadcast', body: { channels: ['room:a', 'room:a'], data: 1 }, field: 'channels.1' },
    { path: '/api/broadcast', body: { channels: Array.from({ length: 101 }, (_, i) => `room:${i}`), data: 1 }, field: 'channels' },
    { path: '/api/broadcast', body: { channels: ['room:a'] }, field: 'data' },
    { path: '/api/disconnect', raw: '{', field: 'body' },
    { path: '/api/disconnect', body: {}, field: 'user' },
    { path: '/api/disconnect', body: { user: '' }, field: 'user' },
    { path: '/api/disconnect', body: { user: 'a', kick: 1 }, field: 'kick' },
    { path: '/api/unsubscribe', raw: '"x"', field: 'body' },
    { path: '/api/unsubscribe', body: { user: 'a' }, field: 'channel' },
    { path: '/api/unsubscribe', body: { channel: 'room:a' }, field: 'user' },
    { path: '/api/unsubscribe', body: { user: 'a', channel: 'no spaces' }, field: 'channel' },
    { path: '/api/notify', raw: '[', field: 'body' },
    { path: '/api/notify', body: { data: 1 }, field: 'user' },
    { path: '/api/notify', body: { user: 'a' }, field: 'data' },
    { path: '/api/notify', body: { user: 'a', data: 1, to: 'b' }, field: 'to' },
  ];
  for (const b of bad) {
    it(`POST ${b.path} ${b.raw !== undefined ? JSON.stringify(b.raw) : JSON.stringify(b.body).slice(0, 60)} → 400 naming ${b.field}`, async () => {
      const res = await call('POST', b.path, b.raw !== undefined ? { raw: b.raw } : { body: b.body });
      expect(res.status).toBe(400);
      expect(errorOf(res.body).code).toBe(107);
      expect(errorOf(res.body).message.startsWith(`${b.field}:`), errorOf(res.body).message).toBe(true);
    });
  }

  const badQueries: Array<{ path: string; param: string }> = [
    { path: '/api/history', param: 'channel' },
    { path: '/api/history?channel=room:a&since=x&epoch=e', param: 'since' },
    { path: '/api/history?channel=room:a&since=-1&epoch=e', param: 'since' },
    { path: '/api/history?channel=room:a&since=1', param: 'epoch' },
    { path: '/api/history?channel=room:a&epoch=e', param: 'since' },
    { path: '/api/history?channel=room:a&limit=1.5', param: 'limit' },
    { path: '/api/history?channel=room:a&limit=1000000', param: 'limit' },
    { path: '/api/history?channel=room:a&channel=room:b', param: 'channel' },
    { path: '/api/history?channel=room:a&offset=3', param: 'offset' },
    { path: '/api/history?channel=bad%20name', param: 'channel' },
    { path: '/api/presence', param: 'channel' },
    { path: '/api/presence?channel=', param: 'channel' },
    { path: '/api/presence?channel=room:a&x=1', param: 'x' },
    { path: '/api/status', param: 'user' },
    { path: '/api/status?user=', param: 'user.0' },
    { path: '/api/status?user=a&x=1', param: 'x' },
  ];
  for (const q of badQueries) {
    it(`GET ${q.path} → 400 naming ${q.param}`, async () => {
      const res = await call('GET', q.path);
      expect(res.status).toBe(400);
      expect(errorOf(res.body).code).toBe(107);
      expect(errorOf(res.body).message.startsWith(`${q.param}:`), errorOf(res.body).message).toBe(true);
    });
  }

  for (const path of ['/api/channels', '/api/info']) {
    it(`GET ${path}?x=1 → 400 naming x (the route takes no parameters)`, async () => {
      const res = await call('GET', `${path}?x=1`);
      expect(res.status).toBe(400);
      expect(errorOf(res.body).message).toMatch(/^x: unknown parameter/);
    });
  }

  it('maps an unknown namespace to 404 (code 102)', async () => {
    const res = await call('POST', '/api/publish', { body: { channel: 'nope:a', data: 1 } });
    expect(res.status).toBe(404);
    expect(errorOf(res.body).code).toBe(102);
  });
});

describe('HTTP API routes', () => {
  it('GET /api/presence lists the subscribed client; 409 where presence is off', async () => {
    const carol = await client('carol');
    await carol.subscribe('room:pres');
    const res = await call('GET', '/api/presence?channel=room:pres');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ users: ['carol'], clients: { [carol.client]: { user: 'carol', client: carol.client } } });

    const off = await call('GET', '/api/presence?channel=plain');
    expect(off.status).toBe(409);
    expect(errorOf(off.body).code).toBe(108);
  });

  it('POST /api/disconnect closes every socket of that user with 4501, and no other', async () => {
    const d1 = await client('dave');
    const d2 = await client('dave');
    const eve = await client('eve');
    await eve.subscribe('room:disc');
    const res = await call('POST', '/api/disconnect', { body: { user: 'dave', reason: 'bye' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    expect((await d1.closed).code).toBe(4501);
    expect((await d2.closed).code).toBe(4501);
    expect(d1.messages.some((m) => m.push === 'disconnect' && m.code === 4501)).toBe(true);
    // eve is still connected and subscribed.
    await call('POST', '/api/publish', { body: { channel: 'room:disc', data: 'still here' } });
    expect((await eve.pub('room:disc')).data).toBe('still here');
  });

  it('POST /api/unsubscribe ends that user’s subscription with push code 2000', async () => {
    const frank = await client('frank');
    await frank.subscribe('room:unsub');
    await frank.subscribe('room:keep');
    const res = await call('POST', '/api/unsubscribe', { body: { user: 'frank', channel: 'room:unsub' } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
    const push = await frank.waitFor((m) => m.push === 'unsubscribe');
    expect(push).toMatchObject({ channel: 'room:unsub', code: 2000, resubscribe: false });
    // Publications to the channel no longer reach frank; the other subscription still does.
    await call('POST', '/api/publish', { body: { channel: 'room:unsub', data: 'gone' } });
    await call('POST', '/api/publish', { body: { channel: 'room:keep', data: 'kept' } });
    await frank.pub('room:keep');
    expect(frank.messages.some((m) => m.push === 'pub' && m.channel === 'room:unsub')).toBe(false);

    const unknownNs = await call('POST', '/api/unsubscribe', { body: { user: 'frank', channel: 'nope:a' } });
    expect(unknownNs.status).toBe(404);
  });

  it('GET /api/channels lists channels with subscriber counts, sorted by name', async () => {
    const g1 = await client('gina');
    const g2 = await client('gus');
    await g1.subscribe('room:ch-b');
    await g2.subscribe('room:ch-b');
    await g1.subscribe('room:ch-a');
    const res = await call('GET', '/api/channels');
    expect(res.status).toBe(200);
    const list = res.body.channels as Array<{ channel: string; subscribers: number }>;
    const names = list.map((c) => c.channel);
    expect(names).toEqual([...names].sort());
    expect(list.filter((c) => c.channel.startsWith('room:ch-'))).toEqual([
      { channel: 'room:ch-a', subscribers: 1 },
      { channel: 'room:ch-b', subscribers: 2 },
    ]);
  });

  it('GET /api/info answers with the version and counters', async () => {
    await client('ivan');
    const res = await call('GET', '/api/info');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      version: VERSION,
      protocol: 1,
      uptimeSeconds: expect.any(Number),
      connections: expect.any(Number),
      channels: expect.any(Number),
      nodes: 1,
    });
    expect(res.body.connections as number).toBeGreaterThanOrEqual(1);
    expect(res.body.uptimeSeconds as number).toBeGreaterThanOrEqual(0);
  });

  it('GET /api/openapi.json is served without a key and lists every route', async () => {
    const res = await call('GET', '/api/openapi.json', { auth: null });
    expect(res.status).toBe(200);
    const doc = res.body as { openapi: string; info: { version: string }; paths: Record<string, Record<string, Json>> };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.version).toBe(VERSION);
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    // The webhook routes answer 409 without `webhooks` (test/backend-webhooks.test.ts calls them).
    const webhookRoutes = ['GET /api/webhooks/failed', 'POST /api/webhooks/retry'];
    // The document routes (docs/collab.md) take a path parameter and binary bodies (test/collab-sync.test.ts calls them).
    const documentRoutes = ['GET /api/documents/{name}', 'GET /api/documents/{name}/state', 'POST /api/documents/{name}/update'];
    expect(routes.sort()).toEqual(
      [...VALID.map((r) => `${r.method} ${r.path.split('?')[0]}`), 'GET /api/openapi.json', ...webhookRoutes, ...documentRoutes].sort(),
    );
    expect(doc.paths['/api/documents/{name}/update']!.post!.security).toEqual([{ apiKey: [] }]);
    for (const r of VALID) {
      const op = doc.paths[r.path.split('?')[0]!]![r.method.toLowerCase()]!;
      expect(op.security, r.path).toEqual([{ apiKey: [] }]);
      expect(Object.keys(op.responses as Json)).toEqual(expect.arrayContaining(['200', '401']));
      if (r.method === 'POST') expect(op.requestBody, r.path).toBeDefined();
    }
    expect((doc.paths['/api/history']!.get!.parameters as Json[]).map((p) => p.name)).toEqual(['channel', 'since', 'epoch', 'limit']);
    expect(doc.paths['/api/openapi.json']!.get!.security).toEqual([]);
  });
});
