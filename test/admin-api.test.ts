import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { signToken } from '../src/auth/token.js';
import { SwitchboardClient } from '../src/client/index.js';
import { closeAllServers, createTestServer, TEST_API_KEY, TEST_SECRET, until, type TestServer } from './support/harness.js';

/** The admin UI's data endpoints, in process: nodes through Redis, connections, features, the admin port. */
const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await closeAllServers();
});

/** A local HTTP server answering each request with `answer(path, body)`: [status, body text]. */
async function backend(answer: (path: string, body: any) => [number, string]): Promise<string> {
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString()));
    req.on('end', () => {
      const [status, body] = answer(req.url ?? '', JSON.parse(text || '{}'));
      res.writeHead(status, { 'content-type': 'application/json' }).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A port nothing listens on (a backend that is down). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function session(base: string, password = TEST_API_KEY): Promise<{ get(path: string): Promise<any>; post(path: string, body: unknown): Promise<Response> }> {
  const res = await fetch(`${base}/admin/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password }) });
  expect(res.status).toBe(200);
  const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
  const { csrf } = (await res.json()) as { csrf: string };
  return {
    async get(path) {
      const r = await fetch(`${base}/admin/api/${path}`, { headers: { cookie } });
      expect(r.status, path).toBe(200);
      return r.json();
    },
    post: (path, body) =>
      fetch(`${base}/admin/api/${path}`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  };
}

describe('admin API', () => {
  it('with Redis, the overview and the connection list cover every node', async () => {
    const redisPrefix = `sb-admin-${randomBytes(4).toString('hex')}`;
    const nodes: TestServer[] = [];
    for (let i = 0; i < 2; i++) nodes.push(await createTestServer({ redisUrl: REDIS_URL, redisPrefix }));
    const a = await nodes[0]!.client({ user: 'ann' });
    await a.subscribe('chat:x');
    const b = await nodes[1]!.client({ user: 'ben' });
    await b.subscribe('chat:x');
    const admin = await session(nodes[0]!.httpUrl);
    // Each node writes its snapshot every 2 s.
    const overview = await until(async () => {
      const o = await admin.get('overview');
      return o.totals.nodes === 2 && o.totals.connections === 2 ? o : undefined;
    }, 'the overview', 10_000);
    expect(overview.totals.users).toBe(2);
    expect(overview.redis).toMatchObject({ ok: true, latencyMs: expect.any(Number) });
    expect(overview.nodes.map((n: any) => n.id)).toContain(overview.node);
    const { users } = await admin.get('connections');
    const ben = users.find((u: any) => u.user === 'ben');
    expect(ben.connections).toHaveLength(1);
    expect(ben.connections[0]).toMatchObject({ transport: 'websocket', channels: ['chat:x'] });
    expect(ben.connections[0].node).not.toBe(overview.node);
    expect((await admin.get('connections?q=an')).users.map((u: any) => u.user)).toEqual(['ann']);
    // The disconnect action reaches the other node.
    expect((await admin.post('disconnect', { user: 'ben' })).status).toBe(200);
    await b.waitForClose();
  });

  it('publications/s and deliveries/s follow the traffic', async () => {
    const server = await createTestServer();
    const c = await server.client({ user: 'ann' });
    await c.subscribe('chat:r');
    const admin = await session(server.httpUrl);
    for (let i = 0; i < 20; i++) await server.hub.publish('chat:r', i);
    const o = await until(async () => {
      const x = await admin.get('overview');
      return x.samples.some((s: any) => s.publicationsPerSecond > 0 && s.deliveriesPerSecond > 0) ? x : undefined;
    }, 'the overview', 10_000);
    expect(o.samples.at(-1)).toMatchObject({ connections: 1, users: 1, channels: 1 });
  });

  it('features show their status when registered, "not enabled" otherwise, and a failing provider its error', async () => {
    const server = await createTestServer();
    const admin = await session(server.httpUrl);
    const byName = async () => Object.fromEntries(((await admin.get('overview')).features as any[]).map((f) => [f.name, f]));
    expect((await byName()).webhooks).toEqual({ name: 'webhooks', enabled: false });
    const remove = server.hub.features.register('webhooks', () => ({ queued: 3, failing: 0 }));
    server.hub.features.register('documents', async () => {
      throw new Error('store down');
    });
    const on = await byName();
    expect(on.webhooks).toEqual({ name: 'webhooks', enabled: true, status: { queued: 3, failing: 0 } });
    expect(on.documents).toEqual({ name: 'documents', enabled: true, error: 'store down' });
    remove();
    expect((await byName()).webhooks.enabled).toBe(false);
  });

  it.each([
    ['SQLite', {}],
    ['Redis', { redisUrl: REDIS_URL }],
  ])('the features panel reports webhooks, proxy, documents and msgpack from the running hub (webhook queue in %s)', async (_store, storage) => {
    const proxyUrl = await backend((path, body) => {
      if (path !== '/subscribe') return [404, '{}'];
      if (body.channel === 'chat:bad') return [500, '{}'];
      if (body.channel === 'chat:no') return [403, '{}'];
      if (body.channel === 'chat:junk') return [200, '"not an answer"'];
      return [200, '{"result":{}}'];
    });
    const server = await createTestServer({
      ...storage,
      redisPrefix: `sb-admin-features-${randomBytes(4).toString('hex')}`,
      webhooks: { url: `http://127.0.0.1:${await closedPort()}/webhooks`, secret: 'a webhook secret of some length', initialBackoffMs: 50, maxBackoffMs: 100, timeoutMs: 500 },
      proxy: { secret: 'a proxy secret of some length!!', subscribe: { url: `${proxyUrl}/subscribe`, timeoutMs: 2_000 } },
      namespaces: { chat: {}, docs: { document: true } },
    });
    const admin = await session(server.httpUrl);
    const byName = async () => Object.fromEntries(((await admin.get('overview')).features as any[]).map((f) => [f.name, f]));

    const json = await server.client({ user: 'ann' });
    expect(await json.errorCode('subscribe', { channel: 'chat:bad' })).toBe(114);
    expect(await json.errorCode('subscribe', { channel: 'chat:no' })).toBe(116);
    expect(await json.errorCode('subscribe', { channel: 'chat:junk' })).toBe(117);
    await json.subscribe('chat:good');
    const packed = new SwitchboardClient(server.url, { token: await signToken({ secret: TEST_SECRET, user: 'ben', ttl: 3600 }), codec: 'msgpack' });
    cleanups.push(() => packed.disconnect());
    packed.connect();
    await packed.ready();
    await server.hub.document('docs:notes');

    // ann and ben came online, and the webhook backend is down: their user.online events stay queued.
    const features = await until(async () => {
      const f = await byName();
      return f.webhooks.status?.queued >= 2 ? f : undefined;
    }, 'queued webhook events', 10_000);
    expect(features.webhooks).toEqual({ name: 'webhooks', enabled: true, status: { queued: expect.any(Number), failed: 0, deliveredSinceStart: 0, failedSinceStart: 0 } });
    expect(features.proxy).toEqual({
      name: 'proxy',
      enabled: true,
      status: {
        inFlight: 0,
        calls: 4,
        errors: { timeout: 0, unavailable: 0, http_5xx: 1, refused: 1, invalid: 1, limited: 0 },
        byKind: { subscribe: { calls: 4, errors: 3 } },
      },
    });
    expect(features.documents).toEqual({ name: 'documents', enabled: true, status: { open: 1, maxOpenDocuments: 10_000 } });
    expect(features.msgpack).toEqual({ name: 'msgpack', enabled: true, status: { msgpack: 1, json: 1 } });

    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/switchboard_proxy_requests_total\{kind="subscribe",outcome="http_5xx"\} 1\n/);
    expect(metrics).toMatch(/switchboard_proxy_requests_total\{kind="subscribe",outcome="ok"\} 1\n/);

    // Closing the hub removes its providers.
    await server.close();
    expect((await server.hub.features.collect()).filter((f) => f.enabled)).toEqual([]);
  });

  it('webhook events delivered since start count in the webhooks status, and leave the queue', async () => {
    const url = await backend(() => [200, '{}']);
    const server = await createTestServer({ webhooks: { url: `${url}/webhooks`, secret: 'a webhook secret of some length', events: ['user.online'] } });
    await server.client({ user: 'ann' });
    const status = await until(async () => {
      const webhooks = (await server.hub.features.collect()).find((f) => f.name === 'webhooks')!;
      return (webhooks.status?.deliveredSinceStart as number) >= 1 ? webhooks.status : undefined;
    }, 'a delivered webhook event', 10_000);
    expect(status).toEqual({ queued: 0, failed: 0, deliveredSinceStart: 1, failedSinceStart: 0 });
  });

  it('without webhooks, proxy or a document namespace, only msgpack is enabled', async () => {
    const server = await createTestServer();
    await server.client({ user: 'ann' });
    const features = (await server.hub.features.collect()).filter((f) => f.enabled);
    expect(features).toEqual([{ name: 'msgpack', enabled: true, status: { msgpack: 0, json: 1 } }]);
  });

  it('with an admin port, the admin UI lives there only; adminPassword logs in too; bad logins are throttled', async () => {
    const server = await createTestServer({ adminPort: 0, adminPassword: 'an admin password' });
    expect((await fetch(`${server.httpUrl}/admin`)).status).toBe(404);
    expect((await fetch(`${server.adminUrl}/admin`)).status).toBe(200);
    const admin = await session(server.adminUrl!, 'an admin password');
    expect((await admin.get('info')).connections).toBe(0);
    const codes: number[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await fetch(`${server.adminUrl}/admin/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"password":"wrong"}' });
      codes.push(r.status);
    }
    expect(codes.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(codes.at(-1)).toBe(429);
  });
});
