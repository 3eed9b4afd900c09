import { afterEach, describe, expect, it } from 'vitest';
import { signToken } from '../src/auth/token.js';
import type { BrokerEventHandler } from '../src/broker/broker.js';
import type { Publication } from '../src/stream/types.js';
import { MemoryBroker } from '../src/broker/memory.js';
import { MemoryIdempotencyLog } from '../src/history/idempotency-log.js';
import { MemoryHistoryLog } from '../src/history/memory-log.js';
import {
  ClientError,
  ClientErrorCode,
  SwitchboardClient,
  type ClientOptions,
  type Publication as ClientPublication,
  type StateChange,
} from '../src/client/index.js';
import { createHub, HubError, type CreateHubOptions, type Hub } from '../src/index.js';
import { TEST_SECRET } from './support/harness.js';
import { freePort, waitFor } from './support/processes.js';
import { TcpProxy } from './support/tcp-proxy.js';

const FAST = { minMs: 10, maxMs: 100, factor: 2 };
const hubs: Hub[] = [];
const clients: SwitchboardClient[] = [];
const proxies: TcpProxy[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await Promise.all(hubs.splice(0).map((h) => h.close()));
});

async function startHub(extra: Partial<CreateHubOptions> = {}): Promise<{ hub: Hub; url: string; port: number }> {
  const hub = createHub({
    auth: { secret: TEST_SECRET },
    limits: { shutdownSpreadMs: 0, shutdownTimeoutMs: 2_000 },
    namespaces: { chat: { presence: true, joinLeave: true }, feed: { history: { size: 0 } } },
    ...extra,
  });
  hubs.push(hub);
  const { url, port } = await hub.listen(0, '127.0.0.1');
  return { hub, url, port };
}

async function client(url: string | string[], user = 'alice', options: ClientOptions = {}): Promise<SwitchboardClient> {
  const c = new SwitchboardClient(url, { token: await signToken({ secret: TEST_SECRET, user, ttl: 3600 }), backoff: FAST, ...options });
  clients.push(c);
  return c;
}

function record(c: SwitchboardClient): StateChange[] {
  const states: StateChange[] = [];
  c.on('state', (s) => states.push(s));
  return states;
}

describe('client: pub/sub, rpc, history, presence', () => {
  it('connects, subscribes, receives server and client publications in order, and reports states', async () => {
    const { hub, url } = await startHub();
    const c = await client(url);
    const states = record(c);
    const got: ClientPublication[] = [];
    const sub = c.subscribe<{ n: number }>('chat:room', { onPublication: (p) => got.push(p) });
    c.connect();
    await c.ready();
    await sub.ready();
    expect(c.state).toBe('connected');
    expect(c.user).toBe('alice');
    expect(sub.state).toBe('subscribed');
    await hub.publish('chat:room', { n: 1 });
    const mine = await sub.publish({ n: 2 });
    expect(mine.offset).toBe(2);
    await waitFor(() => got.length === 2, 'two publications');
    expect(got.map((p) => [p.offset, p.data])).toEqual([
      [1, { n: 1 }],
      [2, { n: 2 }],
    ]);
    expect(got[1]!.info?.user).toBe('alice');
    expect(sub.position).toEqual({ offset: 2, epoch: mine.epoch });
    expect(states.map((s) => s.state)).toEqual(['connecting', 'connected']);
    expect(states[1]!.reason).toMatch(/connected to ws:\/\/127\.0\.0\.1/);
    c.disconnect();
    expect(states.at(-1)).toMatchObject({ state: 'disconnected', previous: 'connected', reason: 'disconnect() called' });
  });

  it('calls RPC methods and carries server error codes', async () => {
    const { hub, url } = await startHub();
    hub.rpc('echo', (ctx, data) => ({ user: ctx.user, data }));
    hub.rpc('refuse', () => {
      throw new HubError(1042, 'not today', true);
    });
    const c = await client(url);
    c.connect();
    expect(await c.rpc('echo', { x: 1 })).toEqual({ user: 'alice', data: { x: 1 } });
    const notFound = await c.rpc('nope').catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(ClientError);
    expect(notFound).toMatchObject({ code: 104, codeName: 'METHOD_NOT_FOUND', fromServer: true, temporary: false });
    const refused = (await c.rpc('refuse').catch((e: unknown) => e)) as ClientError;
    expect(refused).toMatchObject({ code: 1042, codeName: 'APPLICATION', fromServer: true, temporary: true });
    expect(refused.message).toMatch(/not today/);
  });

  it('reads history and presence, and gets join/leave', async () => {
    const { hub, url } = await startHub();
    for (let i = 1; i <= 5; i++) await hub.publish('chat:h', { i });
    const a = await client(url, 'alice');
    const b = await client(url, 'bob');
    const joins: string[] = [];
    const leaves: string[] = [];
    const subA = a.subscribe('chat:h', { onJoin: (i) => joins.push(i.user), onLeave: (i) => leaves.push(i.user) });
    a.connect();
    await subA.ready();
    const hist = await subA.history({ limit: 2 });
    expect(hist.publications.map((p) => p.data)).toEqual([{ i: 4 }, { i: 5 }]);
    expect(hist.position.offset).toBe(5);
    const since = await a.history('chat:h', { since: { offset: 3, epoch: hist.position.epoch } });
    expect(since.publications.map((p) => p.offset)).toEqual([4, 5]);

    const subB = b.subscribe('chat:h');
    b.connect();
    await subB.ready();
    await waitFor(() => joins.includes('bob'), 'bob joins');
    const presence = await subA.presence();
    expect(
      Object.values(presence.clients)
        .map((p) => p.user)
        .sort(),
    ).toEqual(['alice', 'bob']);
    expect(presence.users).toEqual(['alice', 'bob']);
    await subB.unsubscribe();
    await waitFor(() => leaves.includes('bob'), 'bob leaves');

    const noHistory = (await a.history('feed:x').catch((e: unknown) => e)) as ClientError;
    expect(noHistory).toMatchObject({ code: 108, codeName: 'NOT_AVAILABLE' });
  });

  it('ends a refused subscription with onError carrying the server code', async () => {
    const { url } = await startHub();
    const c = await client(url);
    const errors: ClientError[] = [];
    const unknown = c.subscribe('nope:x', { onError: (e) => errors.push(e) });
    const other = c.subscribe('chat:#bob', { onError: (e) => errors.push(e) });
    c.connect();
    await expect(unknown.ready()).rejects.toMatchObject({ code: 102 });
    await expect(other.ready()).rejects.toMatchObject({ code: 103, codeName: 'PERMISSION_DENIED' });
    expect(errors.map((e) => e.code).sort()).toEqual([102, 103]);
    expect(unknown.state).toBe('unsubscribed');
    expect(c.getSubscription('nope:x')).toBeUndefined();
    expect(() => c.subscribe('chat:a') && c.subscribe('chat:a')).toThrow(/already subscribed/);
  });
});

describe('client: connection management', () => {
  it('does not reconnect after a terminal close (kicked, 4501)', async () => {
    const { hub, url } = await startHub();
    const c = await client(url);
    const states = record(c);
    c.connect();
    await c.ready();
    await hub.disconnect('alice');
    await waitFor(() => c.state === 'disconnected', 'disconnected');
    expect(states.at(-1)).toMatchObject({ state: 'disconnected', previous: 'connected', code: 4501 });
    expect(states.at(-1)!.reason).toMatch(/4501 kicked/);
    // Many backoff periods later it still has not tried again.
    await new Promise((r) => setTimeout(r, 300));
    expect(states.map((s) => s.state)).toEqual(['connecting', 'connected', 'disconnected']);
  });

  it('does not reconnect with a bad token (101, close 4500)', async () => {
    const { url } = await startHub();
    const c = new SwitchboardClient(url, {
      token: await signToken({ secret: 'another-secret-0123456789abcdefghijkl', user: 'alice' }),
      backoff: FAST,
    });
    clients.push(c);
    const errors: ClientError[] = [];
    c.on('error', (e) => errors.push(e));
    const states = record(c);
    c.connect();
    await waitFor(() => c.state === 'disconnected', 'disconnected');
    expect(errors[0]).toMatchObject({ code: 101, codeName: 'UNAUTHORIZED', fromServer: true });
    expect(states.at(-1)!.reason).toMatch(/connect refused: connect: invalid token/);
    await expect(c.ready()).rejects.toMatchObject({ code: ClientErrorCode.DISCONNECTED });
  });

  it('fails over across URLs, round robin', async () => {
    const dead = `ws://127.0.0.1:${await freePort()}/ws`;
    const a = await startHub();
    const b = await startHub();
    const c = await client([dead, a.url, b.url]);
    const urls: string[] = [];
    c.on('connected', (info) => urls.push(info.url));
    const got: number[] = [];
    const sub = c.subscribe<number>('chat:f', { onPublication: (p) => got.push(p.data) });
    c.connect();
    await waitFor(() => urls.length === 1, 'first connect');
    expect(urls[0]).toBe(a.url);
    await sub.ready();
    await a.hub.close(); // close 4000: reconnect elsewhere
    await waitFor(() => urls.length === 2 && sub.state === 'subscribed', 'second connect');
    expect(urls[1]).toBe(b.url);
    await b.hub.publish('chat:f', 7);
    await waitFor(() => got.length === 1, 'publication through b');
    expect(got).toEqual([7]);
  });

  it('detects a dead connection by missing pings and reconnects', async () => {
    const { url, port } = await startHub({
      limits: { pingIntervalMs: 1_000, pongTimeoutMs: 500, shutdownSpreadMs: 0, shutdownTimeoutMs: 2_000 },
    });
    const proxy = await new TcpProxy(port).start();
    proxies.push(proxy);
    const c = await client(url.replace(String(port), String(proxy.port)));
    const states = record(c);
    c.connect();
    await c.ready();
    proxy.freeze(); // nothing passes, nothing closes
    await waitFor(() => c.state === 'connecting', 'the client to notice the silence');
    expect(states.at(-1)!.reason).toMatch(/no ping from the server/);
    proxy.thaw();
    await waitFor(() => c.state === 'connected', 'reconnected');
  });

  it('answers server pings so the server keeps the connection', async () => {
    // A pong deadline a loaded machine still meets (the client answers from the same event loop).
    const pingIntervalMs = 600;
    const { url } = await startHub({ limits: { pingIntervalMs, pongTimeoutMs: 500, shutdownSpreadMs: 0, shutdownTimeoutMs: 2_000 } });
    const c = await client(url);
    const states = record(c);
    c.connect();
    await c.ready();
    await new Promise((r) => setTimeout(r, 3 * pingIntervalMs + 200)); // at least three ping/pong rounds
    expect(c.state).toBe('connected');
    expect(states.map((s) => s.state)).toEqual(['connecting', 'connected']);
  });

  it('rejects commands clearly: while disconnected, and in flight when the connection drops', async () => {
    const { hub, url, port } = await startHub();
    let release: (() => void) | undefined;
    hub.rpc('slow', () => new Promise<string>((resolve) => (release = () => resolve('late'))));
    const proxy = await new TcpProxy(port).start();
    proxies.push(proxy);
    const c = await client(url.replace(String(port), String(proxy.port)));
    await expect(c.rpc('slow')).rejects.toMatchObject({ code: ClientErrorCode.DISCONNECTED, temporary: true });
    c.connect();
    await c.ready();
    const inflight = c.rpc('slow');
    await waitFor(() => release !== undefined, 'the rpc to reach the server');
    proxy.cutAll();
    const err = (await inflight.catch((e: unknown) => e)) as ClientError;
    expect(err).toBeInstanceOf(ClientError);
    expect(err).toMatchObject({ code: ClientErrorCode.DISCONNECTED, codeName: 'DISCONNECTED', temporary: true });
    expect(err.message).toMatch(/rpc: the connection was lost before the reply/);
    release?.();
  });
});

describe('client: recovery', () => {
  it('fires onRecoveryFailed when the stream was lost (a memory hub restarted: new epoch), then goes on', async () => {
    const first = await startHub();
    const c = await client(first.url);
    const got: Array<[number, unknown]> = [];
    const failed: Array<{ since: { offset: number; epoch: string }; position: { offset: number; epoch: string } }> = [];
    const sub = c.subscribe('chat:lost', {
      onPublication: (p) => got.push([p.offset, p.data]),
      onRecoveryFailed: (ctx) => failed.push(ctx),
    });
    c.connect();
    await sub.ready();
    await first.hub.publish('chat:lost', 'a');
    await first.hub.publish('chat:lost', 'b');
    await waitFor(() => got.length === 2, 'two publications');
    const before = sub.position!;
    await first.hub.close();
    hubs.splice(hubs.indexOf(first.hub), 1);
    await waitFor(() => c.state === 'connecting', 'connection lost');
    // Same port, memory history: the stream is gone, a new epoch starts.
    const second = createHub({
      auth: { secret: TEST_SECRET },
      limits: { shutdownSpreadMs: 0, shutdownTimeoutMs: 2_000 },
      namespaces: { chat: {} },
    });
    hubs.push(second);
    await second.listen(first.port, '127.0.0.1');
    await waitFor(() => failed.length === 1 && sub.state === 'subscribed', 'resubscribed');
    expect(failed[0]!.since).toEqual(before);
    expect(failed[0]!.position.epoch).not.toBe(before.epoch);
    await second.publish('chat:lost', 'c');
    await waitFor(() => got.length === 3, 'a publication in the new epoch');
    expect(got).toEqual([
      [1, 'a'],
      [2, 'b'],
      [1, 'c'],
    ]);
  });
});

describe('client: server-driven unsubscribe', () => {
  it('2000: notifies and does not resubscribe', async () => {
    const { hub, url } = await startHub();
    const c = await client(url);
    const ended: number[] = [];
    const sub = c.subscribe('chat:u', { onUnsubscribed: (ctx) => ended.push(ctx.code) });
    c.connect();
    await sub.ready();
    await hub.unsubscribe('alice', 'chat:u');
    await waitFor(() => ended.length === 1, 'unsubscribed');
    expect(ended).toEqual([2000]);
    expect(sub.state).toBe('unsubscribed');
    expect(c.getSubscription('chat:u')).toBeUndefined();
    // Sentinel: a command sent after the push was handled is answered after any resubscribe
    // the client would have sent (commands run in order), so that one would show by now.
    await c.statuses(['alice']);
    expect(hub.stats().channels).toBe(0);
  });

  it('2001: resubscribes at once with since and recovers the gap, exactly once', async () => {
    // A broker that loses one delivery (like Redis pub/sub can): the node sees the gap at the
    // next publication and tells the client to resubscribe (2001).
    const dropped = new Set([3]);
    class LossyBroker extends MemoryBroker {
      override setHandler(handler: BrokerEventHandler): void {
        const onPublication = (channel: string, pub: Publication, epoch: string): void => {
          if (dropped.delete(pub.offset)) return;
          handler.onPublication(channel, pub, epoch);
        };
        // Everything else passes through untouched.
        super.setHandler(
          new Proxy(handler, {
            get: (target, prop) => {
              if (prop === 'onPublication') return onPublication;
              const value = Reflect.get(target, prop) as unknown;
              return typeof value === 'function' ? value.bind(target) : value;
            },
          }),
        );
      }
    }
    const broker = new LossyBroker({ history: new MemoryHistoryLog(), idempotency: new MemoryIdempotencyLog() });
    const { hub, url } = await startHub({ broker });
    const c = await client(url);
    const got: ClientPublication<number>[] = [];
    const subscribed: Array<boolean | undefined> = [];
    const sub = c.subscribe<number>('chat:gap', {
      onPublication: (p) => got.push(p),
      onSubscribed: (ctx) => subscribed.push(ctx.recovered),
    });
    c.connect();
    await sub.ready();
    for (let i = 1; i <= 6; i++) await hub.publish('chat:gap', i);
    await waitFor(() => got.length === 6, 'six publications');
    expect(got.map((p) => p.offset)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(got.map((p) => p.data)).toEqual([1, 2, 3, 4, 5, 6]);
    // 3 was lost on the way; the gap shows at 4; both (and whatever came meanwhile) are recovered.
    expect(
      got
        .filter((p) => p.recovered)
        .map((p) => p.offset)
        .slice(0, 2),
    ).toEqual([3, 4]);
    expect(subscribed).toEqual([undefined, true]);
  });
});

describe('client: offline queue basics', () => {
  it('queues publishes made before connecting and flushes them in order after subscribing', async () => {
    const { url } = await startHub();
    const c = await client(url, 'alice', { offlineQueueSize: 3 });
    const got: number[] = [];
    const sub = c.subscribe<number>('chat:q', { onPublication: (p) => got.push(p.data) });
    const sent = [1, 2, 3].map((n) => sub.publish(n));
    const full = await sub.publish(4).catch((e: unknown) => e);
    expect(full).toMatchObject({ code: ClientErrorCode.QUEUE_FULL, codeName: 'QUEUE_FULL', temporary: true });
    expect((full as Error).message).toMatch(/offline queue is full \(3 publishes waiting\)/);
    expect(c.pendingPublishes).toBe(3);
    c.connect();
    const results = await Promise.all(sent);
    expect(results.map((r) => r.offset)).toEqual([1, 2, 3]);
    await waitFor(() => got.length === 3, 'three publications');
    expect(got).toEqual([1, 2, 3]);
    expect(c.pendingPublishes).toBe(0);
  });

  it('refuses commands larger than maxMessageBytes instead of getting the connection closed (1009)', async () => {
    const { hub, url } = await startHub({ limits: { maxMessageBytes: 1_000, shutdownSpreadMs: 0, shutdownTimeoutMs: 2_000 } });
    hub.rpc('echo', (_ctx, data) => data);
    const c = await client(url, 'alice', { maxMessageBytes: 1_000 });
    await expect(c.publish('chat:big', 'x'.repeat(2_000))).rejects.toMatchObject({ code: ClientErrorCode.MESSAGE_TOO_BIG });
    await expect(c.publish('chat:big', undefined)).rejects.toMatchObject({ code: ClientErrorCode.BAD_ARGUMENT });
    c.connect();
    await c.ready();
    await expect(c.rpc('echo', 'x'.repeat(2_000))).rejects.toMatchObject({ code: ClientErrorCode.MESSAGE_TOO_BIG });
    expect(await c.rpc('echo', 'small')).toBe('small');
    expect(c.state).toBe('connected');
  });

  it("flushes a queue larger than the server's command burst in order, without being rate-limited", async () => {
    const { url } = await startHub({ namespaces: { chat: { history: { size: 1_000 } } } });
    const c = await client(url);
    const errors: ClientError[] = [];
    c.on('error', (e) => errors.push(e));
    const got: number[] = [];
    const sub = c.subscribe<number>('chat:burst', { onPublication: (p) => got.push(p.data) });
    const results = Array.from({ length: 300 }, (_, i) => sub.publish(i));
    c.connect();
    const positions = await Promise.all(results);
    expect(positions.map((p) => p.offset)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    await waitFor(() => got.length === 300, '300 publications');
    expect(got).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(errors).toEqual([]); // no 111 from the server
  });

  it('paces to the command rate the server announces when none is configured', async () => {
    // A server far stricter than the SDK's default pace (90/s, burst 180).
    const { url } = await startHub({
      namespaces: { chat: { history: { size: 1_000 } } },
      limits: { commandRate: { perSecond: 40, burst: 10 } },
    });
    const c = await client(url);
    const errors: ClientError[] = [];
    c.on('error', (e) => errors.push(e));
    const got: number[] = [];
    const sub = c.subscribe<number>('chat:slow', { onPublication: (p) => got.push(p.data) });
    const results = Array.from({ length: 60 }, (_, i) => sub.publish(i));
    c.connect();
    const positions = await Promise.all(results);
    expect(positions.map((p) => p.offset)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    await waitFor(() => got.length === 60, '60 publications');
    expect(got).toEqual(Array.from({ length: 60 }, (_, i) => i));
    expect(errors).toEqual([]); // no 111: the client kept under 40/s, burst 10
  });
});
