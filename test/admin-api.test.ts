import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer, TEST_API_KEY, until, type TestServer } from './support/harness.js';

/** The admin UI's data endpoints, in process: nodes through Redis, connections, features, the admin port. */
const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

afterEach(closeAllServers);

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
