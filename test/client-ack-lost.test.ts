import { afterEach, describe, expect, it } from 'vitest';
import { signToken } from '../src/auth/token.js';
import { SwitchboardClient, type ClientError, type Publication } from '../src/client/index.js';
import { createHub, type Hub } from '../src/index.js';
import { TEST_SECRET } from './support/harness.js';
import { waitFor } from './support/processes.js';
import { TcpProxy } from './support/tcp-proxy.js';

/**
 * A TCP proxy between the publisher and the hub cuts the connection at the moment the publish
 * reply passes through: the server applied the publish, the client never hears so. The client
 * must retry with the same idempotency key, and the server must not publish it twice.
 */
const hubs: Hub[] = [];
const clients: SwitchboardClient[] = [];
const proxies: TcpProxy[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await Promise.all(hubs.splice(0).map((h) => h.close()));
});

async function setup(): Promise<{ hub: Hub; proxy: TcpProxy; publisher: SwitchboardClient; subscriber: SwitchboardClient }> {
  const hub = createHub({
    auth: { secret: TEST_SECRET },
    limits: { shutdownSpreadMs: 0, shutdownTimeoutMs: 2_000 },
    namespaces: { chat: { history: { size: 100, ttlSeconds: 600 } } },
  });
  hubs.push(hub);
  const { port } = await hub.listen(0, '127.0.0.1');
  const proxy = await new TcpProxy(port).start();
  proxies.push(proxy);
  const make = async (p: number, user: string): Promise<SwitchboardClient> => {
    const c = new SwitchboardClient(`ws://127.0.0.1:${p}/ws`, {
      token: await signToken({ secret: TEST_SECRET, user, ttl: 3600 }),
      backoff: { minMs: 10, maxMs: 100, factor: 2 },
    });
    clients.push(c);
    return c;
  };
  return { hub, proxy, publisher: await make(proxy.port, 'pub'), subscriber: await make(port, 'sub') };
}

/** Cuts the connection the first time a publish reply (`"result":{"offset"`) comes through. */
function cutOnFirstPublishReply(proxy: TcpProxy): { cut: () => boolean } {
  let cut = false;
  proxy.inspect = (chunk) => {
    if (!cut && chunk.toString('latin1').includes('"result":{"offset"')) {
      cut = true;
      return true;
    }
    return false;
  };
  return { cut: () => cut };
}

describe('client: a publish whose acknowledgement is lost', () => {
  it('is retried with the same key and applied exactly once', async () => {
    const { proxy, publisher, subscriber } = await setup();
    const seen: Publication[] = [];
    const mine: Publication[] = [];
    const sub = subscriber.subscribe('chat:ack', { onPublication: (p) => seen.push(p) });
    const pubSub = publisher.subscribe('chat:ack', { onPublication: (p) => mine.push(p) });
    let connects = 0;
    publisher.on('connected', () => connects++);
    const errors: ClientError[] = [];
    publisher.on('error', (e) => errors.push(e));
    subscriber.connect();
    publisher.connect();
    await Promise.all([sub.ready(), pubSub.ready()]);

    const trap = cutOnFirstPublishReply(proxy);
    const result = await pubSub.publish({ text: 'once' }, { idempotencyKey: 'order-17' });
    expect(trap.cut()).toBe(true);
    expect(connects).toBe(2); // it had to reconnect to learn the result
    expect(result.offset).toBe(1);

    const next = await pubSub.publish({ text: 'after' });
    expect(next.offset).toBe(2); // nothing else took an offset in between
    await waitFor(() => seen.length === 2 && mine.length === 2, 'both publications everywhere');
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.map((p) => [p.offset, p.data])).toEqual([
      [1, { text: 'once' }],
      [2, { text: 'after' }],
    ]);
    // The publisher's own subscription got the first one back through recovery, once.
    expect(mine.map((p) => [p.offset, p.recovered])).toEqual([
      [1, true],
      [2, false],
    ]);
    const history = await sub.history();
    expect(history.publications.map((p) => p.data)).toEqual([{ text: 'once' }, { text: 'after' }]);
  });

  it('with many publishes in flight, every one is applied exactly once and in order', async () => {
    const { proxy, publisher, subscriber } = await setup();
    const seen: Publication<number>[] = [];
    const sub = subscriber.subscribe<number>('chat:many', { onPublication: (p) => seen.push(p) });
    const pubSub = publisher.subscribe('chat:many');
    subscriber.connect();
    publisher.connect();
    await Promise.all([sub.ready(), pubSub.ready()]);

    const trap = cutOnFirstPublishReply(proxy);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => pubSub.publish(i)));
    expect(trap.cut()).toBe(true);
    expect(results.map((r) => r.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await waitFor(() => seen.length >= 20, '20 publications');
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.map((p) => p.data)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(seen.map((p) => p.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});
