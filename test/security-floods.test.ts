import { connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Connection } from '../src/connection/connection.js';
import { closeAllServers, createTestServer, sleep, tick, until, type TestServer } from './support/harness.js';
import { handshakeStatus, type ProtocolClient } from './support/protocol-client.js';

const sockets = new Set<Socket>();
afterEach(async () => {
  vi.restoreAllMocks();
  for (const s of sockets) s.destroy();
  sockets.clear();
  await closeAllServers();
});

/** A raw TCP connection to the server (for hand-written HTTP). */
function rawSocket(port: number): Promise<Socket & { closedAt: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1') as Socket & { closedAt: Promise<string> };
    sockets.add(sock);
    let received = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (received += d));
    sock.closedAt = new Promise((r) => sock.on('close', () => r(received)));
    sock.on('error', () => undefined);
    sock.once('connect', () => resolve(sock));
    sock.once('error', reject);
  });
}

/** Resolves with what the server sent before closing, or rejects after `ms`. */
function closedWithin(sock: Socket & { closedAt: Promise<string> }, ms: number, what: string): Promise<string> {
  return Promise.race([
    sock.closedAt,
    sleep(ms).then(() => {
      throw new Error(`${what}: the server did not close the connection within ${ms} ms`);
    }),
  ]);
}

describe('slowloris and idle connections (BRIEF §5.9)', () => {
  it('a client trickling partial headers is closed after limits.headersTimeoutMs', async () => {
    const s = await createTestServer({ limits: { headersTimeoutMs: 1_000 } });
    const loris: Array<Socket & { closedAt: Promise<string> }> = [];
    for (let i = 0; i < 5; i++) {
      const sock = await rawSocket(s.port);
      sock.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
      loris.push(sock);
    }
    // Keep each one "busy": a header line now and then, never the blank line that ends them.
    let n = 0;
    const trickle = setInterval(() => {
      for (const sock of loris) if (!sock.destroyed) sock.write(`X-Slow-${n++}: a\r\n`);
    }, 150);
    try {
      // Meanwhile, a real client gets in and is served.
      const c = await s.client();
      expect(await c.call('ping', {})).toEqual({});
      for (const sock of loris) {
        const got = await closedWithin(sock, 8_000, 'slowloris');
        expect(got === '' || got.startsWith('HTTP/1.1 408')).toBe(true);
      }
    } finally {
      clearInterval(trickle);
    }
  });

  it('an upgraded connection that never sends connect is closed with 4004', async () => {
    const s = await createTestServer({ limits: { connectTimeoutMs: 300 } });
    const idle = await s.client({ connect: false });
    const ok = await s.client();
    expect((await idle.waitForClose(8_000)).code).toBe(4004);
    expect(ok.closeInfo).toBeUndefined();
  });

  it('a connection that stops answering pings is closed with 4002; one that answers stays', async () => {
    // A pong deadline the answering client meets even on a loaded machine (it shares the event loop).
    const s = await createTestServer({ limits: { pingIntervalMs: 600, pongTimeoutMs: 500 } });
    const deaf = await s.client({ user: 'deaf', autoPong: false });
    const ok = await s.client({ user: 'ok' });
    expect((await deaf.waitForClose(8_000)).code).toBe(4002);
    expect(deaf.pushes('ping').length).toBeGreaterThanOrEqual(1);
    await until(() => ok.pushes('ping').length >= 3, 'three pings answered', 8_000);
    expect(ok.closeInfo).toBeUndefined();
  });
});

describe('connection caps (BRIEF §5.9)', () => {
  it('limits.maxConnections: the next handshake gets 503 until one closes', async () => {
    const s = await createTestServer({ limits: { maxConnections: 3 } });
    const clients: ProtocolClient[] = [];
    for (let i = 0; i < 3; i++) clients.push(await s.client({ user: `u${i}` }));
    expect(await handshakeStatus(s.url)).toBe(503);
    expect(await handshakeStatus(s.url)).toBe(503);
    expect(s.hub.stats().connections).toBe(3);
    await clients[0]!.close();
    await until(() => s.hub.stats().connections === 2, 'the server to forget the closed one');
    const again = await s.client({ user: 'again' });
    expect(await again.call('ping', {})).toEqual({});
    for (const c of clients.slice(1)) expect(await c.call('ping', {})).toEqual({});
  });

  it('limits.maxConnectionsPerUser: the next connect of that user is closed with 4007; others unaffected', async () => {
    const s = await createTestServer({ limits: { maxConnectionsPerUser: 2 } });
    const a1 = await s.client({ user: 'alice' });
    const a2 = await s.client({ user: 'alice' });
    const a3 = await s.client({ user: 'alice', connect: false });
    const id = a3.id();
    a3.sendRaw(JSON.stringify({ id, method: 'connect', params: { token: await s.token('alice') } }));
    await Promise.race([a3.waitForClose(), a3.waitFor((m) => m.id === id && m.result !== undefined)]);
    expect(a3.messages.find((m) => m.id === id)?.result).toBeUndefined();
    expect((await a3.waitForClose()).code).toBe(4007);
    const bob = await s.client({ user: 'bob' });
    expect(await bob.call('ping', {})).toEqual({});
    expect(await a1.call('ping', {})).toEqual({});
    await a2.close();
    await until(() => s.hub.stats().connections === 2, 'alice’s second connection to be released');
    const a4 = await s.client({ user: 'alice' });
    expect(a4.connectResult.user).toBe('alice');
  });

  it('limits.maxConnectionsPerUser: the refused connect gets error 106 before the close', async () => {
    const s = await createTestServer({ limits: { maxConnectionsPerUser: 1 } });
    await s.client({ user: 'alice' });
    const extra = await s.client({ user: 'alice', connect: false });
    const id = extra.id();
    extra.sendRaw(JSON.stringify({ id, method: 'connect', params: { token: await s.token('alice') } }));
    const closed = await extra.waitForClose();
    const reply = extra.messages.find((m) => m.id === id);
    expect({ close: closed.code, error: reply?.error?.code }).toEqual({ close: 4007, error: 106 });
  });

  it('limits.connectionRatePerIp: a burst of handshakes from one address gets 429; another address is not affected', async () => {
    const s = await createTestServer({ limits: { connectionRatePerIp: { perSecond: 0.01, burst: 3 } } });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push(await handshakeStatus(s.url));
    expect(statuses.slice(0, 3)).toEqual([101, 101, 101]);
    expect(statuses.slice(3)).toEqual([429, 429, 429]);
    // Loopback has the whole 127/8: the same server sees 127.0.0.2 as a different client.
    expect(await handshakeStatus(s.url, { localAddress: '127.0.0.2' })).toBe(101);
  });

  it('limits.commandRate: over the rate gets 111 (temporary), going on closes with 4005', async () => {
    const s = await createTestServer({
      namespaces: { chat: { clientPublish: 'any' } },
      limits: { commandRate: { perSecond: 1, burst: 10 }, maxViolations: 5 },
    });
    const calm = await s.client({ user: 'calm' });
    await calm.subscribe('chat:rate');
    const spammer = await s.client({ user: 'spam' });
    // One command per frame, each sent after the previous reply: every reply can be seen.
    const got = [];
    for (let i = 0; i < 40 && spammer.isOpen; i++) {
      const reply = await spammer.request('publish', { channel: 'chat:rate', data: i }).catch(() => undefined);
      if (reply) got.push(reply);
    }
    const closed = await spammer.waitForClose();
    expect(closed.code).toBe(4005);
    const limited = got.filter((r) => r.error?.code === 111);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect(limited.every((r) => r.error!.temporary === true)).toBe(true);
    // At most the burst got through (the connect used one token).
    const h = await calm.call('history', { channel: 'chat:rate', limit: 100 });
    expect(h.publications.length).toBeLessThanOrEqual(10);
    expect(await calm.call('ping', {})).toEqual({});
  });
});

describe('a client that stops reading (BRIEF §5.9)', () => {
  /**
   * Publishes `count` 1 KB messages in small batches, waiting for the reading subscriber to keep
   * up (so only the paused one can fall behind), sampling the server's queued bytes.
   */
  async function firehose(s: TestServer, reader: ProtocolClient, channel: string, count: number) {
    const payload = 'x'.repeat(1000);
    let published = 0;
    let maxQueued = 0;
    while (published < count) {
      for (let i = 0; i < 32 && published < count; i++) {
        await s.hub.publish(channel, { i: published, payload });
        published += 1;
      }
      await tick();
      maxQueued = Math.max(maxQueued, s.hub.stats().queuedBytes);
      await reader.waitForPubCount(channel, published - 64);
    }
    await reader.waitForPubCount(channel, published);
    return { published, maxQueued };
  }

  it('is closed with 4001 once its queue passes maxQueueBytes, while the others receive everything', async () => {
    const maxQueueBytes = 256 * 1024;
    const s = await createTestServer({ limits: { maxQueueBytes } });
    const closes = vi.spyOn(Connection.prototype, 'close');
    const ch = 'chat:firehose';
    const slow = await s.client({ user: 'slow' });
    const slowId: string = slow.connectResult.client;
    await slow.subscribe(ch);
    const readers = [await s.client({ user: 'r1', retainPubs: false }), await s.client({ user: 'r2', retainPubs: false })];
    for (const r of readers) await r.subscribe(ch);
    slow.pauseReading();

    const { published, maxQueued } = await firehose(s, readers[0]!, ch, 20_000); // ~20 MB
    for (const r of readers) {
      expect(r.pubCount(ch)).toBe(published);
      expect(r.closeInfo).toBeUndefined();
    }
    // The slow one was dropped by the server, as a slow consumer.
    const slowCloses = closes.mock.calls.filter((_, i) => (closes.mock.contexts[i] as Connection).id === slowId);
    expect(slowCloses.map((c) => c[0])).toEqual([4001]);
    expect(s.hub.stats().connections).toBe(2);
    // Memory stayed bounded: never past the hard bound, and nothing left queued now.
    expect(maxQueued).toBeLessThan(4 * maxQueueBytes + 64 * 1024); // the hard bound: 4 × limits.maxQueueBytes
    expect(maxQueued).toBeLessThan(published * 1000 * 0.1);
    await until(() => s.hub.stats().queuedBytes < 64 * 1024, 'queues to drain');
  });

  it('process memory stays flat relative to what was published', async () => {
    setFlagsFromString('--expose_gc');
    const gc = runInNewContext('gc') as () => void;
    const memory = (): { live: number; rss: number } => {
      gc();
      const m = process.memoryUsage();
      return { live: m.heapUsed + m.external, rss: m.rss };
    };
    const maxQueueBytes = 256 * 1024;
    const s = await createTestServer({ limits: { maxQueueBytes } });
    const ch = 'chat:rss';
    const slow = await s.client({ user: 'slow' });
    await slow.subscribe(ch);
    const reader = await s.client({ user: 'reader', retainPubs: false });
    await reader.subscribe(ch);
    slow.pauseReading();
    await firehose(s, reader, ch, 2_000); // warm up
    const before = memory();
    const { published } = await firehose(s, reader, ch, 60_000); // ~60 MB more
    const after = memory();
    const bytes = published * 1000;
    // Without the slow-consumer close the process would hold ~60 MB more for the paused client.
    expect(after.live - before.live, 'live heap + external growth').toBeLessThan(bytes * 0.1);
    expect(after.rss - before.rss, 'RSS growth').toBeLessThan(bytes * 0.5);
    expect(s.hub.stats().connections).toBe(1);
    expect(s.hub.stats().queuedBytes).toBeLessThan(64 * 1024);
  });
});
