/**
 * Proxy hooks against a real `switchboard serve` and the Python backend (test/support/backend.py):
 * cookie-session connect (SDK in Node, raw WebSocket, SSE), subscribe allowlist, publish through
 * the backend's database, RPC, refresh; backend down and slow; signature checks in the backend.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sign } from '../src/backend-http/signed-post.js';
import { ClientError, SwitchboardClient, type Publication } from '../src/client/index.js';
import { CHROMIUM, launchChromium } from './support/browser.js';
import { killProcesses, waitFor } from './support/processes.js';
import { ProtocolClient } from './support/protocol-client.js';
import { PROXY_SECRET, startPythonBackend, withCookie, WEBHOOK_SECRET, type PythonBackend } from './support/python-backend.js';
import { startServe, type ServeProcess } from './support/serve-process.js';

let dir: string;
let backend: PythonBackend;
let server: ServeProcess;
const clients: SwitchboardClient[] = [];

function proxyConfig(url: string, timeoutMs: number): Record<string, unknown> {
  const endpoint = (kind: string): Record<string, unknown> => ({ url: `${url}/proxy/${kind}`, timeoutMs });
  return {
    secret: PROXY_SECRET,
    connect: endpoint('connect'),
    refresh: endpoint('refresh'),
    subscribe: endpoint('subscribe'),
    publish: endpoint('publish'),
    rpc: endpoint('rpc'),
  };
}


function sdk(cookie: string): SwitchboardClient {
  const c = new SwitchboardClient(server.wsUrl, { WebSocket: withCookie(cookie), backoff: { minMs: 50, maxMs: 200, factor: 2 } });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sb-proxy-'));
  backend = await startPythonBackend();
  const webDir = join(dir, 'web');
  mkdirSync(webDir);
  writeFileSync(
    join(webDir, 'index.html'),
    '<!doctype html><meta charset="utf-8"><title>cookie session</title>' +
      '<script type="module">import * as sb from "/client.js"; window.sb = sb; window.sbLoaded = true;</script>',
  );
  server = await startServe(dir, {
    dataDir: join(dir, 'data'),
    webDir,
    proxy: proxyConfig(backend.url, 800),
    namespaces: { chat: { presence: true }, staff: { presence: true }, vault: {}, open: { proxy: { subscribe: null, publish: null } } },
    limits: { shutdownSpreadMs: 0, shutdownTimeoutMs: 2_000 },
  });
}, 30_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await killProcesses();
  rmSync(dir, { recursive: true, force: true });
});

describe('proxy hooks with a Python backend', () => {
  it('a cookie session connects without a JWT; subscribe, publish and RPC go through the backend', async () => {
    const alice = sdk('theme=dark; session=s-alice');
    const bob = sdk('session=s-bob');
    const got: Publication[] = [];
    const sub = bob.subscribe('chat:room', { onPublication: (p) => got.push(p) });
    bob.connect();
    await sub.ready(10_000);
    expect(bob.user).toBe('bob');
    alice.connect();
    await alice.ready(10_000);
    expect(alice.user).toBe('alice');

    // Publish: the backend stores it and assigns the id; subscribers get what it returned.
    const aliceRoom = alice.subscribe('chat:room');
    await aliceRoom.ready(10_000);
    await aliceRoom.publish({ text: '  hello  ' });
    await waitFor(() => got.length === 1, 'the stored message');
    const stored = (await backend.state()).messages;
    expect(stored).toEqual([{ id: 1, channel: 'chat:room', user: 'alice', text: 'hello' }]);
    expect(got[0]!.data).toEqual(stored[0]);
    const refused = (await aliceRoom.publish({ text: ' ' }).catch((e: unknown) => e)) as ClientError;
    expect(refused).toMatchObject({ code: 1422, fromServer: true });

    // Subscribe allowlist: staff:* for staff only, vault:* for nobody; `open` has the proxy off.
    const staffA = alice.subscribe('staff:ops');
    await staffA.ready(10_000);
    // The subscribe proxy's channel info, and the connect proxy's connection info, in presence.
    let presence = await staffA.presence();
    for (let i = 0; i < 100 && Object.keys(presence.clients).length === 0; i++) presence = await staffA.presence();
    expect(Object.values(presence.clients)).toEqual([
      expect.objectContaining({ user: 'alice', connInfo: { name: 'Alice' }, chanInfo: { role: 'staff' } }),
    ]);
    const staffB = bob.subscribe('staff:ops');
    const denied = (await staffB.ready(10_000).catch((e: unknown) => e)) as ClientError;
    expect(denied).toMatchObject({ code: 1403 });
    const vault = (await alice.subscribe('vault:x').ready(10_000).catch((e: unknown) => e)) as ClientError;
    expect(vault).toMatchObject({ code: 1403 });
    const open = alice.subscribe('open:x');
    await open.ready(10_000);
    await open.publish({ anything: true });

    // RPC reaches the backend; its errors keep their codes (≥ 1000).
    expect(await alice.rpc('sum', [1, 2, 3])).toEqual({ sum: 6 });
    expect(await bob.rpc('whoami')).toEqual({ user: 'bob', transport: 'websocket' });
    expect(await alice.rpc('nope').catch((e: unknown) => e)).toMatchObject({ code: 1404, fromServer: true });

    // What the backend was sent: client id, transport, only the forwarded headers, the user.
    const calls = (await backend.state()).proxyCalls;
    const connect = calls.find((c) => c.kind === 'connect' && (c.body.headers as Record<string, string>).cookie?.includes('s-alice'))!;
    expect(connect.body).toMatchObject({ transport: 'websocket', headers: { cookie: 'theme=dark; session=s-alice' } });
    expect(Object.keys(connect.body.headers as object)).toEqual(['cookie']);
    expect(typeof connect.body.client).toBe('string');
    expect(calls.find((c) => c.kind === 'publish')!.body).toMatchObject({ user: 'alice', channel: 'chat:room', data: { text: '  hello  ' } });
    expect(calls.some((c) => c.kind === 'subscribe' && c.body.channel === 'open:x')).toBe(false);
    expect(calls.some((c) => c.kind === 'publish' && c.body.channel === 'open:x')).toBe(false);
  });

  it('in Chromium, the page’s session cookie is all the SDK needs: no token', async () => {
    await waitFor(() => existsSync(CHROMIUM), `${CHROMIUM} to be installed`, 25_000);
    const browser = await launchChromium();
    try {
      const context = await browser.newContext();
      await context.addCookies([{ name: 'session', value: 's-alice', url: server.httpUrl }]);
      const page = await context.newPage();
      await page.goto(`${server.httpUrl}/index.html`);
      await page.waitForFunction(() => (window as unknown as { sbLoaded?: boolean }).sbLoaded === true, undefined, { timeout: 15_000 });
      const result = await page.evaluate(async () => {
        const w = window as unknown as { sb: typeof import('../src/client/index.js') };
        const client = new w.sb.SwitchboardClient('/ws');
        const got: unknown[] = [];
        const sub = client.subscribe('chat:browser', { onPublication: (p) => got.push(p.data) });
        client.connect();
        await sub.ready(10_000);
        await sub.publish({ text: 'from the browser' });
        const who = await client.rpc('whoami');
        for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
        const user = client.user;
        client.disconnect();
        return { user, who, got };
      });
      expect(result.user).toBe('alice');
      expect(result.who).toEqual({ user: 'alice', transport: 'websocket' });
      expect(result.got).toEqual([{ id: expect.any(Number), channel: 'chat:browser', user: 'alice', text: 'from the browser' }]);
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('a publish retried with its idempotency key reaches the backend with that key: stored once, published once', async () => {
    const ws = await ProtocolClient.open(server.wsUrl, { headers: { cookie: 'session=s-alice' } });
    await ws.connect();
    await ws.subscribe('chat:retry');
    const first = await ws.publish('chat:retry', { text: 'only once' }, 'retry-key-1');
    expect(await ws.publish('chat:retry', { text: 'only once' }, 'retry-key-1')).toEqual(first);
    await ws.publish('chat:retry', { text: 'sentinel' }, 'retry-key-2');
    await ws.waitForPubCount('chat:retry', 2);
    expect(ws.pubs('chat:retry').map((p) => (p.data as { text: string }).text)).toEqual(['only once', 'sentinel']);
    const state = await backend.state();
    expect(state.messages.filter((m) => m.channel === 'chat:retry').map((m) => m.text)).toEqual(['only once', 'sentinel']);
    const calls = state.proxyCalls.filter((c) => c.kind === 'publish' && c.body.channel === 'chat:retry');
    expect(calls.map((c) => c.body.idempotencyKey)).toEqual(['retry-key-1', 'retry-key-1', 'retry-key-2']);
    await ws.close();
  });

  it('an unknown session is refused with the backend error, and the client does not retry it', async () => {
    const ws = await ProtocolClient.open(server.wsUrl, { headers: { cookie: 'session=stolen' } });
    expect(await ws.errorCode('connect')).toBe(1401);
    expect((await ws.closed).code).toBe(4500 /* unauthorized: terminal */);
  });

  it('SSE authenticates with the cookie through the same connect proxy', async () => {
    const ctrl = new AbortController();
    const res = await fetch(`${server.httpUrl}/sse?channel=chat:sse`, { headers: { cookie: 'session=s-bob' }, signal: ctrl.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    const readUntil = async (what: string): Promise<void> => {
      while (!text.includes(what)) text += new TextDecoder().decode((await reader.read()).value);
    };
    await readUntil('event: subscribed');
    const alice = sdk('session=s-alice');
    const sub = alice.subscribe('chat:sse');
    alice.connect();
    await sub.ready(10_000);
    await sub.publish({ text: 'to sse' });
    await readUntil('to sse');
    ctrl.abort();
    const refused = await fetch(`${server.httpUrl}/sse?channel=chat:sse`, { headers: { cookie: 'session=nobody' } });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: { code: 1401 } });
    const sseCall = (await backend.state()).proxyCalls.find((c) => c.kind === 'connect' && c.body.transport === 'sse');
    expect(sseCall?.body.headers).toEqual({ cookie: 'session=s-bob' });
  });

  it('the backend checks signatures: unsigned and forged bodies are refused, signed ones pass', async () => {
    const body = JSON.stringify({ client: 'x', transport: 'websocket', headers: { cookie: 'session=s-alice' } });
    const post = (path: string, raw: string, signature?: string): Promise<Response> =>
      fetch(`${backend.url}${path}`, { method: 'POST', body: raw, headers: signature ? { 'x-switchboard-signature': signature } : {} });
    const before = (await backend.state()).rejected;
    expect((await post('/proxy/connect', body)).status).toBe(401);
    expect((await post('/proxy/connect', body, sign(body, 'not-the-secret-at-all'))).status).toBe(401);
    // A signature of another body (a tampered request) fails too.
    expect((await post('/proxy/connect', body.replace('s-alice', 's-bob'), sign(body, PROXY_SECRET))).status).toBe(401);
    const ok = await post('/proxy/connect', body, sign(body, PROXY_SECRET));
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ result: { user: 'alice' } });
    const events = JSON.stringify({ events: [{ id: 'evt_forged', type: 'user.offline', timestamp: 1, data: { user: 'alice' } }] });
    expect((await post('/webhooks', events)).status).toBe(401);
    expect((await post('/webhooks', events, sign(events, PROXY_SECRET))).status).toBe(401);
    const state = await backend.state();
    expect(state.rejected - before).toBe(5);
    expect(state.events.some((e) => e.id === 'evt_forged')).toBe(false);
    expect((await post('/webhooks', events, sign(events, WEBHOOK_SECRET))).status).toBe(200);
    expect((await backend.state()).events.some((e) => e.id === 'evt_forged')).toBe(true);
  });

  it('a slow backend gives the temporary error 114 within the timeout; a 5xx too; a 4xx refuses (116)', async () => {
    const ws = await ProtocolClient.open(server.wsUrl, { headers: { cookie: 'session=s-alice' } });
    await ws.connect();
    try {
      await backend.control({ slowMs: 2_000 });
      const started = Date.now();
      const reply = await ws.request('rpc', { method: 'sum', data: [1] });
      expect(reply.error).toMatchObject({ code: 114, temporary: true });
      expect(Date.now() - started).toBeLessThan(1_900);
      await backend.control({ slowMs: 0, failStatus: 503 });
      expect((await ws.request('rpc', { method: 'sum', data: [1] })).error).toMatchObject({ code: 114, temporary: true });
      await backend.control({ failStatus: 404 });
      expect((await ws.request('rpc', { method: 'sum', data: [1] })).error).toMatchObject({ code: 116 });
      // A connect while it is slow: 114, and a close that lets the client reconnect.
      await backend.control({ failStatus: 0, slowMs: 2_000 });
      const other = await ProtocolClient.open(server.wsUrl, { headers: { cookie: 'session=s-bob' } });
      expect(await other.errorCode('connect')).toBe(114);
      expect((await other.closed).code).toBe(4006 /* internal: reconnect */);
    } finally {
      await backend.control({ slowMs: 0, failStatus: 0 });
    }
    expect(await ws.call('rpc', { method: 'sum', data: [2, 2] })).toEqual({ data: { sum: 4 } });
  });

  it('refresh: a proxy session is extended by the backend before it expires, or ended', async () => {
    await backend.control({ sessionTtl: 1 });
    try {
      const ws = await ProtocolClient.open(server.wsUrl, { headers: { cookie: 'session=s-alice' } });
      const { expires } = (await ws.connect()) as { expires: number };
      expect(expires).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 1);
      // Past the first expiry the connection is still there: the refresh proxy extended it.
      await new Promise((r) => setTimeout(r, 2_200));
      expect(await ws.call('rpc', { method: 'sum', data: [1] })).toEqual({ data: { sum: 1 } });
      expect((await backend.state()).proxyCalls.some((c) => c.kind === 'refresh')).toBe(true);
      // Logged out: the next refresh ends the session (close 4003: the client must authenticate again).
      const bob = await ProtocolClient.open(server.wsUrl, { headers: { cookie: 'session=s-bob' } });
      await bob.connect();
      await backend.control({ loggedOut: ['s-bob'] });
      expect((await bob.closed).code).toBe(4003);
    } finally {
      await backend.control({ sessionTtl: 3600, loggedOut: [] });
    }
  });

  it('backend down: connects get 114 at once and no connection hangs', async () => {
    await backend.kill();
    const started = Date.now();
    const results = await Promise.all(
      [1, 2, 3].map(async () => {
        const ws = await ProtocolClient.open(server.wsUrl, { headers: { cookie: 'session=s-alice' } });
        const code = await ws.errorCode('connect');
        return { code, close: (await ws.closed).code };
      }),
    );
    expect(results).toEqual([1, 2, 3].map(() => ({ code: 114, close: 4006 })));
    expect(Date.now() - started).toBeLessThan(3_000);
    // The SDK keeps retrying a temporary refusal, and reports it.
    const c = sdk('session=s-alice');
    const errors: ClientError[] = [];
    c.on('error', (e) => errors.push(e));
    c.connect();
    await waitFor(() => errors.some((e) => e.code === 114), 'the SDK to report 114');
    expect(c.state).not.toBe('disconnected');
  });
});
