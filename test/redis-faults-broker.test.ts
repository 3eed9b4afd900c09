import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { until } from './support/harness.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { BrokerEventHandler, ControlCommand } from '../src/broker/broker.js';
import { RedisBroker } from '../src/broker/redis.js';
import { HubError } from '../src/protocol/errors.js';
import type { HistoryOptions, Publication } from '../src/stream/types.js';
import { OwnRedis } from './support/redis-server.js';
import { TcpProxy } from './support/tcp-proxy.js';

/**
 * RedisBroker against a Redis that is down, stalled (SIGSTOP), cut mid-command or fed garbage:
 * every failure is a temporary error (114) within a bounded time, nothing runs twice, nothing
 * hangs. Faults use a private redis-server; plain behaviour tests use the shared one with a
 * prefix of their own.
 */
const SHARED_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const H: HistoryOptions = { size: 1000, ttlMs: 60_000, metaTtlMs: 600_000 };

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function ownRedis(): Promise<OwnRedis> {
  const redis = await OwnRedis.start();
  cleanups.push(() => redis.down());
  return redis;
}

function broker(options: ConstructorParameters<typeof RedisBroker>[0]): RedisBroker {
  const b = new RedisBroker(options);
  cleanups.push(() => b.close());
  return b;
}

/** A prefix on the shared Redis, deleted afterwards. */
function sharedPrefix(): string {
  const prefix = `sbtest-${randomUUID()}`;
  cleanups.push(async () => {
    const redis = new Redis(SHARED_URL);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });
  return prefix;
}

function collector(): BrokerEventHandler & { pubs: Publication[]; controls: ControlCommand[] } {
  const pubs: Publication[] = [];
  const controls: ControlCommand[] = [];
  return { pubs, controls, onPublication: (_c, pub) => pubs.push(pub), onEvent: () => undefined, onControl: (c) => controls.push(c) };
}

/** Resolves with the error `promise` rejects with, or 'hung' if it takes longer than `ms`. */
async function failure(promise: Promise<unknown>, ms: number): Promise<unknown> {
  return Promise.race([
    promise.then(
      () => 'resolved',
      (err: unknown) => err,
    ),
    sleep(ms).then(() => 'hung'),
  ]);
}

async function expectTemporaryWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  const started = Date.now();
  const err = await failure(promise, ms + 2_000);
  expect(err).toBeInstanceOf(HubError);
  expect((err as HubError).code).toBe(114);
  expect((err as HubError).temporary).toBe(true);
  expect(Date.now() - started).toBeLessThan(ms);
}

describe('RedisBroker: the control subscription', () => {
  it('is confirmed even when the node starts while Redis is down, and healthy() waits for it', async () => {
    const redis = await ownRedis();
    await redis.down();
    const b = broker({ url: redis.url, prefix: 'sb', commandTimeoutMs: 500 });
    const handler = collector();
    b.setHandler(handler);
    await sleep(1_500); // several failed connects
    expect(await b.healthy()).toBe(false);
    await redis.up();
    await until(() => b.healthy(), 'the broker to be healthy');
    await b.publishControl({ kind: 'disconnect', user: 'u1', code: 4000, reason: 'bye' });
    await until(() => handler.controls.length === 1, 'its own control command');

    // And again after Redis restarts (nothing survives it): control commands still arrive.
    await redis.restart();
    await until(() => b.healthy(), 'the broker to be healthy again');
    await b.publishControl({ kind: 'unsubscribe', user: 'u1', channel: 'c' });
    await until(() => handler.controls.length === 2, 'the control command after the restart');
    expect(handler.controls[1]).toEqual({ kind: 'unsubscribe', user: 'u1', channel: 'c' });
  });

  it('resubscribes the channels of interest after a restart', async () => {
    const redis = await ownRedis();
    const b = broker({ url: redis.url, prefix: 'sb', commandTimeoutMs: 500 });
    const handler = collector();
    b.setHandler(handler);
    await b.subscribe('room');
    await redis.restart();
    await until(() => b.healthy(), 'the broker to be healthy again');
    await b.publish('room', '"after"', { history: H });
    await until(() => handler.pubs.length === 1, 'the publication after the restart');
    expect(handler.pubs[0]!.data).toBe('"after"');
  });
});

describe('RedisBroker with a stalled Redis (SIGSTOP)', () => {
  it('answers healthy() false at once instead of hanging', async () => {
    const redis = await ownRedis();
    const b = broker({ url: redis.url, prefix: 'sb' }); // default 2 s command timeout
    await until(() => b.healthy(), 'the broker to be healthy');
    redis.stall();
    const started = Date.now();
    const answer = await Promise.race([b.healthy(), sleep(5_000).then(() => 'hung')]);
    expect(answer).toBe(false);
    expect(Date.now() - started).toBeLessThan(1_500);
    redis.resume();
    await until(() => b.healthy(), 'the broker to be healthy after SIGCONT');
  });

  it('fails every call with 114 within the command timeout', async () => {
    const redis = await ownRedis();
    const b = broker({ url: redis.url, prefix: 'sb', commandTimeoutMs: 300 });
    b.setHandler(collector());
    await b.subscribe('old');
    await until(() => b.healthy(), 'the broker to be healthy');
    redis.stall();
    await expectTemporaryWithin(b.publish('c', '1', { history: H }), 1_000);
    await expectTemporaryWithin(b.history('c', { sinceOffset: 0, limit: 10 }, H), 1_000);
    await expectTemporaryWithin(b.publishEvent('c', { kind: 'typing', user: 'u', client: 'x', typing: true }), 1_000);
    await expectTemporaryWithin(b.publishControl({ kind: 'disconnect', user: 'u', code: 4000, reason: '' }), 1_000);
    await expectTemporaryWithin(b.subscribe('new'), 1_000);
    await expectTemporaryWithin(b.unsubscribe('old'), 1_000);
  });

  it('closes within a bounded time', async () => {
    const redis = await ownRedis();
    const b = new RedisBroker({ url: redis.url, prefix: 'sb', commandTimeoutMs: 5_000 });
    await until(() => b.healthy(), 'the broker to be healthy');
    redis.stall();
    const started = Date.now();
    expect(await Promise.race([b.close().then(() => 'closed'), sleep(5_000).then(() => 'hung')])).toBe('closed');
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe('RedisBroker with Redis down', () => {
  it('fails subscribe and unsubscribe with 114, not an internal error', async () => {
    const redis = await ownRedis();
    const b = broker({ url: redis.url, prefix: 'sb', commandTimeoutMs: 500 });
    b.setHandler(collector());
    await b.subscribe('a');
    await until(() => b.healthy(), 'the broker to be healthy');
    await redis.down();
    await until(async () => !(await b.healthy()), 'the broker to notice');
    await expectTemporaryWithin(b.subscribe('b'), 1_500);
    await expectTemporaryWithin(b.unsubscribe('a'), 1_500);
    await expectTemporaryWithin(b.publish('a', '1', { history: H }), 1_500);
  });
});

describe('RedisBroker when the connection drops mid-publish', () => {
  it('fails the publish with 114 and never runs it twice', async () => {
    const redis = await ownRedis();
    const proxy = await new TcpProxy(redis.port).start();
    cleanups.push(() => proxy.close());
    const b = broker({ url: `redis://127.0.0.1:${proxy.port}`, prefix: 'sb', commandTimeoutMs: 1_000 });
    b.setHandler(collector());
    await until(() => b.healthy(), 'the broker to be healthy');
    expect((await b.publish('once', '1', { history: H })).offset).toBe(1); // the script is loaded
    // The next reply from Redis is lost with the connection: the publish ran, the caller cannot know.
    let armed = true;
    proxy.inspect = () => {
      if (!armed) return false;
      armed = false;
      return true;
    };
    const lost = await failure(b.publish('once', '2', { history: H }), 5_000);
    expect(lost).toBeInstanceOf(HubError);
    expect((lost as HubError).code).toBe(114);
    await until(() => b.healthy(), 'the broker to reconnect');
    await sleep(200);
    const direct = redis.connect();
    expect(await direct.hget('sb:meta:{once}', 's')).toBe('2');
    expect(await direct.xlen('sb:stream:{once}')).toBe(2);
    expect((await b.history('once', { limit: 0 }, H)).position.offset).toBe(2);
  });
});

describe('RedisBroker message handling', () => {
  it('survives a throwing handler and malformed messages: later messages still arrive', async () => {
    const prefix = sharedPrefix();
    const b = broker({ url: SHARED_URL, prefix });
    const got: Publication[] = [];
    const controls: ControlCommand[] = [];
    let throwPub = true;
    let throwControl = true;
    b.setHandler({
      onPublication: (_c, pub) => {
        if (throwPub) {
          throwPub = false;
          throw new Error('handler bug');
        }
        got.push(pub);
      },
      onEvent: () => {
        throw new Error('event handler bug');
      },
      onControl: (c) => {
        if (throwControl) {
          throwControl = false;
          throw new Error('control handler bug');
        }
        controls.push(c);
      },
    });
    await b.subscribe('x');
    await until(() => b.healthy(), 'the broker to be healthy');
    await b.publish('x', '"thrown"', { history: H });
    await b.publishControl({ kind: 'disconnect', user: 'u', code: 4000, reason: 'thrown' });
    await b.publishEvent('x', { kind: 'typing', user: 'u', client: 'c', typing: true });
    const raw = new Redis(SHARED_URL);
    cleanups.push(() => raw.quit());
    for (const m of ['pgarbage', 'p1\nonly-epoch', 'p\n\n\n', 'px\ne\n\n1', 'e{not json', 'zzz', ''])
      await raw.publish(`${prefix}:ch:x`, m);
    for (const m of ['not json', 'null', '42', '{"kind":']) await raw.publish(`${prefix}:control`, m);
    await b.publish('x', '"kept"', { history: H });
    await b.publishControl({ kind: 'disconnect', user: 'u', code: 4000, reason: 'kept' });
    await until(() => got.length === 1 && controls.length === 1, 'the later messages');
    expect(got[0]).toMatchObject({ offset: 2, data: '"kept"' });
    expect(controls[0]).toMatchObject({ reason: 'kept' });
  });
});

describe('RedisBroker history', () => {
  it('finds fresh history behind any number of expired entries', async () => {
    const prefix = sharedPrefix();
    let clock = 1_000_000;
    const b = broker({ url: SHARED_URL, prefix, now: () => clock });
    b.setHandler(collector());
    const cases: Array<[expired: number, fresh: number]> = [
      [200, 3],
      [65, 1],
      [100, 2],
      [1, 1],
      [2, 5],
      [17, 4],
      [0, 3],
    ];
    for (const [expired, fresh] of cases) {
      const channel = `h-${expired}-${fresh}`;
      clock = 1_000_000;
      for (let i = 1; i <= expired; i++) await b.publish(channel, String(i), { history: H });
      clock += H.ttlMs + 1;
      for (let i = 1; i <= fresh; i++) await b.publish(channel, String(expired + i), { history: H });
      const all = await b.history(channel, { sinceOffset: 0, limit: 100 }, H);
      expect(all.position.offset, channel).toBe(expired + fresh);
      expect(all.earliest, channel).toBe(expired + 1);
      expect(
        all.publications.map((p) => p.offset),
        channel,
      ).toEqual(Array.from({ length: fresh }, (_, i) => expired + 1 + i));
      const since = await b.history(channel, { sinceOffset: expired, limit: 100 }, H);
      expect(since.publications.map((p) => p.data)).toEqual(all.publications.map((p) => p.data));
      // Once everything expired: nothing is held.
      clock += H.ttlMs + 1;
      const none = await b.history(channel, { sinceOffset: 0, limit: 100 }, H);
      expect(none.earliest, channel).toBe(expired + fresh + 1);
      expect(none.publications).toEqual([]);
    }
  });

  it('bounds a read by maxBytes (at least one publication) and counts what a lowered size trims as lost', async () => {
    const prefix = sharedPrefix();
    const b = broker({ url: SHARED_URL, prefix });
    b.setHandler(collector());
    for (let i = 1; i <= 5; i++) await b.publish('bytes', `"${'x'.repeat(10)}"`, { history: H }); // 12 bytes each
    const read = (q: { maxBytes?: number }, h = H): Promise<number[]> =>
      b.history('bytes', { sinceOffset: 0, limit: 10, ...q }, h).then((r) => r.publications.map((p) => p.offset));
    expect(await read({})).toEqual([1, 2, 3, 4, 5]);
    expect(await read({ maxBytes: 30 })).toEqual([1, 2]);
    expect(await read({ maxBytes: 1 })).toEqual([1]);
    const smaller = await b.history('bytes', { sinceOffset: 0, limit: 10 }, { ...H, size: 2 });
    expect(smaller.earliest).toBe(4);
    expect(smaller.publications.map((p) => p.offset)).toEqual([4, 5]);
  });

  it('creates nothing when a channel never published to is read', async () => {
    const prefix = sharedPrefix();
    const b = broker({ url: SHARED_URL, prefix });
    b.setHandler(collector());
    const direct = new Redis(SHARED_URL);
    cleanups.push(() => direct.quit());
    for (let i = 0; i < 20; i++) {
      const read = await b.history(`random-${i}`, i % 2 ? { limit: 0 } : { sinceOffset: 0, limit: 10 }, H);
      expect(read).toEqual({ position: { offset: 0, epoch: '' }, earliest: 1, publications: [] });
    }
    expect(await direct.keys(`${prefix}:*`)).toEqual([]);
    expect(await direct.exists(`${prefix}:meta:{random-0}`, `${prefix}:stream:{random-0}`)).toBe(0);
    // The first publish creates the epoch; reads then see it.
    const first = await b.publish('random-0', '1', { history: H });
    expect(first.offset).toBe(1);
    expect(first.epoch).not.toBe('');
    expect((await b.history('random-0', { limit: 0 }, H)).position).toEqual({ offset: 1, epoch: first.epoch });
  });
});
