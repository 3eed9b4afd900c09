/**
 * Server-side subscriptions: the connect proxy (test/support/backend.py) answers `channels` for
 * the `s-carol` session, and a real `switchboard serve` subscribes the connection itself. The
 * SDK in Node gets their publications without subscribing; a channel the allowlist refuses is
 * reported without ending the connection; a reconnect recovers exactly (or says it could not);
 * a cookie-session SSE stream gets them without naming them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientError, SwitchboardClient, type Publication, type SubscribedContext } from '../src/client/index.js';
import { killProcesses, waitFor } from './support/processes.js';
import { ProtocolClient } from './support/protocol-client.js';
import { PROXY_SECRET, startPythonBackend, withCookie, type PythonBackend } from './support/python-backend.js';
import { startServe, type ServeProcess } from './support/serve-process.js';
import { TcpProxy } from './support/tcp-proxy.js';

let dir: string;
let backend: PythonBackend;
let server: ServeProcess;
const clients: SwitchboardClient[] = [];


function sdk(cookie: string, codec?: 'json' | 'msgpack', url = server.wsUrl): SwitchboardClient {
  const c = new SwitchboardClient(url, {
    WebSocket: withCookie(cookie),
    backoff: { minMs: 50, maxMs: 200, factor: 2 },
    ...(codec ? { codec } : {}),
  });
  clients.push(c);
  return c;
}

/** A connected publisher (alice, staff) subscribed to `channel`, to publish through the publish proxy. */
async function publisher(channel: string): Promise<(text: string) => Promise<void>> {
  const alice = sdk('session=s-alice');
  const sub = alice.subscribe(channel);
  alice.connect();
  await sub.ready(10_000);
  return async (text) => {
    await sub.publish({ text });
  };
}

const texts = (pubs: Publication[]): string[] => pubs.map((p) => (p.data as { text: string }).text);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sb-server-subs-'));
  backend = await startPythonBackend();
  const endpoint = (kind: string): Record<string, unknown> => ({ url: `${backend.url}/proxy/${kind}`, timeoutMs: 2_000 });
  server = await startServe(dir, {
    dataDir: join(dir, 'data'),
    proxy: { secret: PROXY_SECRET, connect: endpoint('connect'), subscribe: endpoint('subscribe'), publish: endpoint('publish') },
    namespaces: { chat: { presence: true }, staff: {} },
    limits: { shutdownSpreadMs: 0, shutdownTimeoutMs: 2_000 },
  });
}, 30_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await killProcesses();
  rmSync(dir, { recursive: true, force: true });
});

describe('server-side subscriptions from the connect proxy', () => {
  for (const codec of ['json', 'msgpack'] as const) {
    it(`the SDK (${codec}) gets publications of server-side channels without subscribing; a refused one leaves the connection up`, async () => {
      const lobby = await publisher('chat:lobby');
      await lobby(`before carol (${codec})`);
      const carol = sdk('session=s-carol', codec);
      const got: Publication[] = [];
      const subscribed: SubscribedContext[] = [];
      const refused: Array<{ channel: string; error: ClientError }> = [];
      carol.on('publication', (p) => got.push(p));
      carol.on('subscribed', (ctx) => subscribed.push(ctx));
      carol.on('subscribeError', (r) => refused.push(r));
      carol.connect();
      await carol.ready(10_000);
      expect(carol.user).toBe('carol');
      // The connect reply opened them: both chat channels, at the stream top; staff:ops refused.
      expect(subscribed.map((s) => s.channel).sort()).toEqual(['chat:lobby', 'chat:news']);
      expect(subscribed.find((s) => s.channel === 'chat:lobby')).toMatchObject({ recoverable: true, resubscribed: false });
      expect(carol.serverSubscriptions.map((s) => s.channel).sort()).toEqual(['chat:lobby', 'chat:news']);
      expect(refused).toEqual([{ channel: 'staff:ops', error: expect.objectContaining({ code: 1403, fromServer: true }) }]);

      await lobby(`live (${codec})`);
      await waitFor(() => got.length === 1, 'the live publication');
      expect(got[0]).toMatchObject({ channel: 'chat:lobby', recovered: false, data: { user: 'alice', text: `live (${codec})` } });
      // Presence knows the server-side subscriber, and the connection still answers commands.
      const presence = await carol.presence('chat:lobby');
      expect(presence.users).toContain('carol');
      expect(carol.state).toBe('connected');
    });
  }

  it('a reconnect recovers every publication missed on a server-side channel, in order, then live', async () => {
    const news = await publisher('chat:news');
    const carol = sdk('session=s-carol');
    const got: Publication[] = [];
    const subscribed: SubscribedContext[] = [];
    carol.on('publication', (p) => {
      if (p.channel === 'chat:news') got.push(p);
    });
    carol.on('subscribed', (ctx) => {
      if (ctx.channel === 'chat:news') subscribed.push(ctx);
    });
    carol.connect();
    await carol.ready(10_000);
    await news('one');
    await waitFor(() => got.length === 1, 'the first publication');

    carol.disconnect();
    await news('two');
    await news('three');
    await news('four');
    carol.connect();
    await carol.ready(10_000);
    await news('sentinel');
    await waitFor(() => texts(got).includes('sentinel'), 'the sentinel');
    expect(texts(got)).toEqual(['one', 'two', 'three', 'four', 'sentinel']);
    expect(got.map((p) => p.recovered)).toEqual([false, true, true, true, false]);
    const offsets = got.map((p) => p.offset);
    expect(offsets).toEqual(offsets.map((_, i) => offsets[0]! + i));
    expect(subscribed.at(-1)).toMatchObject({ resubscribed: true, recovered: true });
    // The SDK told the server where it stood, in the connect command.
    const calls = (await backend.state()).proxyCalls.filter((c) => c.kind === 'connect');
    expect(calls.length).toBeGreaterThan(0);
  });

  it('a network drop: the SDK reconnects by itself and recovers the server-side channel exactly', async () => {
    const news = await publisher('chat:news');
    const tcp = await new TcpProxy(server.port).start();
    try {
      const carol = sdk('session=s-carol', undefined, `ws://127.0.0.1:${tcp.port}/ws`);
      const got: string[] = [];
      carol.on('publication', (p) => {
        if (p.channel === 'chat:news') got.push(`${(p.data as { text: string }).text}${p.recovered ? ' (recovered)' : ''}`);
      });
      carol.connect();
      await carol.ready(10_000);
      await news('before the drop');
      await waitFor(() => got.length === 1, 'the first publication');
      tcp.refuse();
      await waitFor(() => carol.state !== 'connected', 'the drop to be noticed');
      await news('during 1');
      await news('during 2');
      tcp.accept();
      await carol.ready(10_000);
      await news('drop sentinel');
      await waitFor(() => got.includes('drop sentinel'), 'the sentinel');
      expect(got).toEqual(['before the drop', 'during 1 (recovered)', 'during 2 (recovered)', 'drop sentinel']);
    } finally {
      await tcp.close();
    }
  });

  it('over the raw protocol: connect `subs` recovers exactly, and an unknown epoch answers recovered: false', async () => {
    const lobby = await publisher('chat:lobby');
    const ws = await ProtocolClient.open(server.wsUrl, { headers: { cookie: 'session=s-carol' } });
    const first = await ws.connect();
    const at = first.subs['chat:lobby'].position as { offset: number; epoch: string };
    expect(first.subs['chat:lobby']).toMatchObject({ recoverable: true, publications: [] });
    expect(first.subsRefused['staff:ops']).toMatchObject({ code: 1403 });
    await ws.close();

    await lobby('missed 1');
    await lobby('missed 2');
    const again = await ProtocolClient.open(server.wsUrl, { headers: { cookie: 'session=s-carol' } });
    const reply = await again.connect(undefined, { subs: { 'chat:lobby': { since: at }, 'chat:news': { since: { offset: 3, epoch: 'not-an-epoch' } } } });
    expect(reply.subs['chat:lobby']).toMatchObject({ recovered: true, position: { offset: at.offset + 2, epoch: at.epoch } });
    expect(reply.subs['chat:lobby'].publications.map((p: { offset: number; data: { text: string } }) => [p.offset, p.data.text])).toEqual([
      [at.offset + 1, 'missed 1'],
      [at.offset + 2, 'missed 2'],
    ]);
    expect(reply.subs['chat:news']).toMatchObject({ recovered: false, publications: [] });
    // Live publications arrive as ordinary pushes after the reply.
    await lobby('after');
    const push = await again.waitFor((m) => m.push === 'pub' && m.channel === 'chat:lobby');
    expect(push).toMatchObject({ offset: at.offset + 3, data: { text: 'after' } });
    // A client subscribe to a server-side channel: it is subscribed already.
    expect(await again.errorCode('subscribe', { channel: 'chat:lobby' })).toBe(105);
    await again.close();
  });

  it('a cookie-session SSE stream gets the server-side channels without naming them', async () => {
    const lobby = await publisher('chat:lobby');
    const ctrl = new AbortController();
    const res = await fetch(`${server.httpUrl}/sse`, { headers: { cookie: 'session=s-carol' }, signal: ctrl.signal });
    expect(res.status, res.status === 200 ? '' : await res.text()).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    const readUntil = async (what: string): Promise<void> => {
      while (!text.includes(what)) text += new TextDecoder().decode((await reader.read()).value);
    };
    await readUntil('event: subscribed');
    await readUntil('\n\n');
    const subscribed = JSON.parse(/event: subscribed\ndata: (.*)\n/.exec(text)![1]!) as {
      channels: Record<string, unknown>;
      refused: Record<string, { code: number }>;
    };
    expect(Object.keys(subscribed.channels).sort()).toEqual(['chat:lobby', 'chat:news']);
    expect(subscribed.refused['staff:ops']).toMatchObject({ code: 1403 });
    await lobby('to sse');
    await readUntil('to sse');
    const id = /id: (1:[^\n]*)\nevent: chat:lobby\ndata: \{[^\n]*"to sse"/.exec(text)![1]!;
    ctrl.abort();

    // Its Last-Event-ID holds the server-side channels' positions too: a new stream recovers them.
    await lobby('missed by sse');
    const again = new AbortController();
    const res2 = await fetch(`${server.httpUrl}/sse`, { headers: { cookie: 'session=s-carol', 'last-event-id': id }, signal: again.signal });
    const reader2 = res2.body!.getReader();
    let text2 = '';
    while (!text2.includes('event: subscribed')) text2 += new TextDecoder().decode((await reader2.read()).value);
    await lobby('sse sentinel');
    while (!text2.includes('sse sentinel')) text2 += new TextDecoder().decode((await reader2.read()).value);
    again.abort();
    expect(text2).not.toContain('recovery-failed');
    const events = [...text2.matchAll(/event: chat:lobby\ndata: (.*)\n/g)].map((m) => (JSON.parse(m[1]!) as { text: string }).text);
    expect(events).toEqual(['missed by sse', 'sse sentinel']);
    // Without a cookie session (nor channels), the request is refused.
    const none = await fetch(`${server.httpUrl}/sse`, { headers: { cookie: 'session=s-bob' } });
    expect(none.status).toBe(400);
    expect(await none.json()).toMatchObject({ error: { code: 107 } });
  });
});
