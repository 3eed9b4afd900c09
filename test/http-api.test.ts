import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { signToken } from '../src/auth/token.js';
import { createHub, type Hub } from '../src/index.js';

const SECRET = 'x'.repeat(32);
const KEY = 'k'.repeat(16);
const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

type Json = Record<string, unknown>;

let hub: Hub;
let httpUrl: string;
let wsUrl: string;

beforeAll(async () => {
  hub = createHub({ auth: { secret: SECRET }, apiKey: KEY, namespaces: { room: { presence: true } }, limits: { shutdownSpreadMs: 0 } });
  const listening = await hub.listen(0, '127.0.0.1');
  httpUrl = listening.httpUrl;
  wsUrl = listening.url;
});

afterAll(async () => {
  await hub?.close();
});

interface CallOptions {
  body?: unknown;
  /** Sent as is instead of JSON-encoding `body`. */
  raw?: string;
  /** The Authorization header; null sends none. */
  auth?: string | null;
  base?: string;
}

async function call(method: string, path: string, opts: CallOptions = {}): Promise<{ status: number; body: Json; headers: Headers }> {
  const headers: Record<string, string> = {};
  const auth = opts.auth === undefined ? `apikey ${KEY}` : opts.auth;
  if (auth !== null) headers.authorization = auth;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${opts.base ?? httpUrl}${path}`, { method, headers, body });
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return { status: res.status, body: (await res.json()) as Json, headers: res.headers };
}

function errorOf(body: Json): { code: number; message: string } {
  return body.error as { code: number; message: string };
}

/** A WebSocket client speaking protocol v1: collects every line and waits for matching ones. */
class TestClient {
  readonly messages: Json[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  client = '';
  private nextId = 1;
  private waiters: Array<{ match: (m: Json) => boolean; resolve: (m: Json) => void }> = [];

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (raw: Buffer) => {
      for (const line of raw.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        const msg = JSON.parse(line) as Json;
        this.messages.push(msg);
        if (msg.push === 'ping') this.ws.send('{"method":"pong"}');
        this.waiters = this.waiters.filter((w) => {
          if (!w.match(msg)) return true;
          w.resolve(msg);
          return false;
        });
      }
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async connect(user: string): Promise<TestClient> {
    const ws = new WebSocket(wsUrl);
    const c = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const reply = await c.command('connect', { token: await signToken({ secret: SECRET, user }) });
    c.client = (reply.result as { client: string }).client;
    return c;
  }

  /** Sends a command and resolves with its reply; a reply with an error rejects. */
  async command(method: string, params: Json): Promise<Json> {
    const id = this.nextId++;
    const reply = this.waitFor((m) => m.id === id);
    this.ws.send(JSON.stringify({ id, method, params }));
    const msg = await reply;
    if (msg.error) throw new Error(`${method} failed: ${JSON.stringify(msg.error)}`);
    return msg;
  }

  subscribe(channel: string): Promise<Json> {
    return this.command('subscribe', { channel });
  }

  /** Resolves with the first message (already received or future) that matches. */
  waitFor(match: (m: Json) => boolean): Promise<Json> {
    const seen = this.messages.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  pub(channel: string): Promise<Json> {
    return this.waitFor((m) => m.push === 'pub' && m.channel === channel);
  }

  close(): void {
    this.ws.close();
  }
}

const clients: TestClient[] = [];
async function client(user: string): Promise<TestClient> {
  const c = await TestClient.connect(user);
  clients.push(c);
  return c;
}
afterAll(() => {
  for (const c of clients) c.close();
});

/** One valid request per route (besides openapi.json): used for the 401 checks. */
const VALID: Array<{ method: string; path: string; body?: unknown }> = [
  { method: 'POST', path: '/api/publish', body: { channel: 'room:auth', data: 1 } },
  { method: 'POST', path: '/api/broadcast', body: { channels: ['room:auth'], data: 1 } },
  { method: 'GET', path: '/api/history?channel=room:auth' },
  { method: 'GET', path: '/api/presence?channel=room:auth' },
  { method: 'POST', path: '/api/disconnect', body: { user: 'nobody' } },
  { method: 'POST', path: '/api/unsubscribe', body: { user: 'nobody', channel: 'room:auth' } },
  { method: 'GET', path: '/api/channels' },
  { method: 'GET', path: '/api/info' },
  { method: 'POST', path: '/api/notify', body: { user: 'nobody', data: 1 } },
  { method: 'GET', path: '/api/status?user=nobody' },
];

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
    expect(routes.sort()).toEqual([...VALID.map((r) => `${r.method} ${r.path.split('?')[0]}`), 'GET /api/openapi.json'].sort());
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
