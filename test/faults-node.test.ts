/**
 * The Node's error paths, through a real server and real WebSocket clients, with the storage
 * seams (Broker, PresenceStore, Store) replaced by fault-injecting doubles
 * (test/support/faults.ts) over the real in-memory implementations.
 *
 * "Exactly one reply" is checked with a sentinel: a `ping` sent after the command. Commands of
 * one connection run in order, so once the ping is answered every reply to the command before
 * it has been written; the test then counts the replies carrying the command's id.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ERRORS, HubError } from '../src/index.js';
import { faultyBackends, type FaultyBackends } from './support/faults.js';
import { closeAllServers, createTestServer, until, type TestServer } from './support/harness.js';
import type { ProtocolClient, ServerMessage } from './support/protocol-client.js';

/** How long a subscribe whose broker call hangs may take to be answered with 114. */
const HANG_BOUND_MS = 12_000;

let backends: FaultyBackends | undefined;

afterEach(async () => {
  backends?.reset();
  backends = undefined;
  await closeAllServers();
});

const namespaces = {
  chat: {},
  room: { presence: true, joinLeave: true, typing: true, readReceipts: true },
};

async function setup(options: Record<string, unknown> = {}): Promise<FaultyBackends & { server: TestServer }> {
  const b = faultyBackends();
  backends = b;
  const server = await createTestServer({ ...b.options, namespaces, ...options });
  return { ...b, server };
}

/** Every reply (result or error) that carried `id`. */
function repliesTo(client: ProtocolClient, id: number): ServerMessage[] {
  return client.messages.filter((m) => m.id === id && m.push === undefined);
}

/** Sends a command and waits for its first reply; returns the id and that reply. */
async function send(
  client: ProtocolClient,
  method: string,
  params: unknown,
  timeoutMs?: number,
): Promise<{ id: number; reply: ServerMessage }> {
  const id = client.id();
  const reply = await client.requestRaw(id, JSON.stringify({ id, method, params }), timeoutMs);
  return { id, reply };
}

/** The sentinel: a ping answered means everything queued before it was answered. */
async function sentinel(client: ProtocolClient): Promise<void> {
  expect(await client.call('ping', {})).toEqual({});
}

/** Polls `read` (async) until `ok` holds or `timeoutMs` passed; returns the last value read. */
async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const channelIs =
  (name: string) =>
  (channel: string): boolean =>
    channel === name;

const errorCases = [
  { what: 'a plain Error', error: new Error('disk on fire: /var/secret'), code: 100 },
  { what: 'HubError(114)', error: new HubError(114), code: 114 },
] as const;

/** The reply is a temporary error with `code` (or one of `codes`), without internals. */
function expectTemporaryError(reply: ServerMessage, code: number | readonly number[]): void {
  expect(reply.result, `expected an error, got ${JSON.stringify(reply)}`).toBeUndefined();
  expect(typeof code === 'number' ? [code] : code, JSON.stringify(reply.error)).toContain(reply.error?.code);
  expect(reply.error).toMatchObject({ temporary: true });
  expect(reply.error!.message).not.toContain('disk on fire'); // internals never leak
}

describe('broker.publish fails', () => {
  it.each(errorCases)(
    'throwing $what answers the publisher with $code (temporary); its connection and other clients go on',
    async ({ error, code }) => {
      const { server, broker } = await setup();
      const alice = await server.client({ user: 'alice' });
      const bob = await server.client({ user: 'bob' });
      await alice.subscribe('chat:room');
      await bob.subscribe('chat:room');

      broker.faults.throw('publish', error, { match: channelIs('chat:room'), times: 1 });
      const { id, reply } = await send(alice, 'publish', { channel: 'chat:room', data: { n: 'lost' } });
      expectTemporaryError(reply, code);

      // Another client publishes right after, unaffected; then the same connection publishes again.
      const fromBob = await bob.publish('chat:room', { n: 'bob' });
      const fromAlice = await alice.publish('chat:room', { n: 'alice' });
      expect(fromAlice.offset).toBe(fromBob.offset + 1);
      expect(fromAlice.epoch).toBe(fromBob.epoch);

      // Alice's second publication is the sentinel: nothing from the failed one came before it.
      for (const c of [alice, bob]) {
        await c.waitFor((m) => m.push === 'pub' && m.data?.n === 'alice');
        expect(c.pubs('chat:room').map((m) => m.data.n)).toEqual(['bob', 'alice']);
        expect(c.pushes('unsubscribe')).toEqual([]);
        expect(c.isOpen).toBe(true);
      }
      await sentinel(alice);
      expect(repliesTo(alice, id)).toHaveLength(1);
    },
  );

  it('a failing server-side publish (hub.publish) rejects, and clients still get the next one', async () => {
    const { server, broker } = await setup();
    const alice = await server.client({ user: 'alice' });
    await alice.subscribe('chat:room');
    broker.faults.throw('publish', new HubError(114), { match: channelIs('chat:room'), times: 1 });
    await expect(server.hub.publish('chat:room', { n: 1 })).rejects.toMatchObject({ code: 114 });
    await server.hub.publish('chat:room', { n: 2 });
    await alice.waitFor((m) => m.push === 'pub' && m.data?.n === 2);
    expect(alice.pubs('chat:room').map((m) => m.data.n)).toEqual([2]);
  });
});

describe('broker.history fails on subscribe', () => {
  it.each(errorCases)(
    'throwing $what answers the subscribe exactly once with $code; a later subscribe succeeds',
    async ({ error, code }) => {
      const { server, broker } = await setup();
      const alice = await server.client({ user: 'alice' });
      broker.faults.throw('history', error, { match: channelIs('chat:h') });

      const { id, reply } = await send(alice, 'subscribe', { channel: 'chat:h' });
      expectTemporaryError(reply, code);
      await sentinel(alice);
      expect(repliesTo(alice, id)).toHaveLength(1);
      // The half-made subscription was undone: nothing is left in the channel index.
      expect(server.hub.stats().channels).toBe(0);

      broker.faults.clear();
      const ok = await alice.subscribe('chat:h');
      expect(ok.position).toMatchObject({ offset: 0 });
      await server.hub.publish('chat:h', { n: 1 });
      await alice.waitFor((m) => m.push === 'pub' && m.channel === 'chat:h');
      expect(alice.pubs('chat:h').map((m) => m.data.n)).toEqual([1]);
    },
  );

  it('throwing on a subscribe with recovery (since) answers once too, and recovery works once it is back', async () => {
    const { server, broker } = await setup();
    const alice = await server.client({ user: 'alice' });
    const first = await alice.subscribe('chat:r');
    await alice.call('unsubscribe', { channel: 'chat:r' });
    await server.hub.publish('chat:r', { n: 1 });
    const since = first.position;

    broker.faults.throw('history', new HubError(114), { match: channelIs('chat:r'), times: 1 });
    const { id, reply } = await send(alice, 'subscribe', { channel: 'chat:r', since });
    expectTemporaryError(reply, 114);
    await sentinel(alice);
    expect(repliesTo(alice, id)).toHaveLength(1);

    const again = await alice.subscribe('chat:r', since);
    expect(again.recovered).toBe(true);
    expect(again.publications.map((p: any) => p.data.n)).toEqual([1]);
  });
});

describe('broker.subscribe fails', () => {
  // The broker failing to take the subscription may be reported as internal (100) or as the
  // broker being unavailable (114); a HubError of its own keeps its code.
  const subscribeCases = [
    { what: 'a plain Error', error: new Error('disk on fire: /var/secret'), codes: [100, 114] },
    { what: 'HubError(114)', error: new HubError(114), codes: [114] },
  ] as const;

  it.each(subscribeCases)(
    'throwing $what answers the subscribe exactly once with $codes; the channel can be subscribed later',
    async ({ error, codes }) => {
      const { server, broker } = await setup();
      const alice = await server.client({ user: 'alice' });
      broker.faults.throw('subscribe', error, { match: channelIs('chat:s'), times: 1 });

      const { id, reply } = await send(alice, 'subscribe', { channel: 'chat:s' });
      expectTemporaryError(reply, codes);
      await sentinel(alice);
      expect(repliesTo(alice, id)).toHaveLength(1);
      expect(server.hub.stats().channels).toBe(0);

      await alice.subscribe('chat:s');
      await server.hub.publish('chat:s', { n: 1 });
      await alice.waitFor((m) => m.push === 'pub' && m.channel === 'chat:s');
    },
  );

  it(
    `hanging answers the subscribe with 114 (temporary) within ${HANG_BOUND_MS / 1000} s, and the connection goes on`,
    async () => {
      const { server, broker } = await setup();
      const alice = await server.client({ user: 'alice' });
      const bob = await server.client({ user: 'bob' });
      broker.faults.hang('subscribe', { match: channelIs('chat:slow') });

      const id = alice.id();
      const answered = alice.requestRaw(id, JSON.stringify({ id, method: 'subscribe', params: { channel: 'chat:slow' } }), HANG_BOUND_MS);
      await broker.faults.waitForCalls('subscribe', 1);
      // Meanwhile other channels and other clients are unaffected.
      await bob.subscribe('chat:fine');

      const reply = await answered.catch((err: Error) => err);
      expect(reply, 'the subscribe must be answered, not left hanging').not.toBeInstanceOf(Error);
      expectTemporaryError(reply as ServerMessage, 114);
      await sentinel(alice);
      expect(repliesTo(alice, id)).toHaveLength(1);
      // The connection takes commands again, and the abandoned subscription does not count.
      await alice.subscribe('chat:other');
      expect(alice.isOpen).toBe(true);
    },
    HANG_BOUND_MS + 20_000,
  );

  it(
    'after a hung broker.subscribe was abandoned, subscribing to that channel again works once the broker answers again',
    async () => {
      const { server, broker } = await setup();
      const alice = await server.client({ user: 'alice' });
      broker.faults.hang('subscribe', { match: channelIs('chat:slow'), times: 1 });

      const first = await alice.request('subscribe', { channel: 'chat:slow' }, HANG_BOUND_MS).catch((err: Error) => err);
      expect(first, 'the subscribe must be answered, not left hanging').not.toBeInstanceOf(Error);
      expect((first as ServerMessage).error).toMatchObject({ code: 114 });

      // The first broker.subscribe is still hung (never released); the next one goes through.
      expect(broker.faults.hanging('subscribe')).toBe(1);
      const again = await alice.request('subscribe', { channel: 'chat:slow' }, HANG_BOUND_MS).catch((err: Error) => err);
      expect(again, 'the retry must be answered').not.toBeInstanceOf(Error);
      expect((again as ServerMessage).error, JSON.stringify(again)).toBeUndefined();
      await server.hub.publish('chat:slow', { n: 1 });
      await alice.waitFor((m) => m.push === 'pub' && m.channel === 'chat:slow');
    },
    2 * HANG_BOUND_MS + 20_000,
  );
});

describe('presence fails', () => {
  it('presence.add throwing after a subscribe: the subscribe is answered exactly once, and the state is consistent', async () => {
    const { server, presence } = await setup();
    const alice = await server.client({ user: 'alice' });
    presence.faults.throw('add', undefined, { match: channelIs('room:p') });

    const { id, reply } = await send(alice, 'subscribe', { channel: 'room:p' });
    await sentinel(alice);
    const replies = repliesTo(alice, id);
    expect(replies, `replies to the subscribe: ${JSON.stringify(replies)}`).toHaveLength(1);
    presence.faults.clear();

    if (reply.error) {
      // Refused: then it must be a registered code, and nothing of the subscription is left.
      expect(Object.hasOwn(ERRORS, reply.error.code)).toBe(true);
      expect(server.hub.stats().channels).toBe(0);
      await alice.subscribe('room:p');
    }
    // Subscribed (at first, or on the retry): publications arrive.
    await server.hub.publish('room:p', { n: 1 });
    await alice.waitFor((m) => m.push === 'pub' && m.channel === 'room:p');
    expect(alice.isOpen).toBe(true);
  });

  it.each(['remove', 'disconnectUser'] as const)(
    'presence.%s throwing during a disconnect still releases the connection',
    async (method) => {
      const { server, presence } = await setup({ limits: { maxConnectionsPerUser: 1 } });
      const alice = await server.client({ user: 'alice' });
      await alice.subscribe('room:p');
      expect(server.hub.stats().connections).toBe(1);

      presence.faults.throw(method);
      await alice.close();
      await presence.faults.waitForCalls(method, 1);
      await until(() => server.hub.stats().connections === 0, 'the connection to be released');
      await until(() => server.hub.stats().channels === 0, 'the subscription to be released');

      // With at most one connection per user, a new one is admitted only if the old one is gone.
      const again = await server.client({ user: 'alice' });
      expect(again.connectResult).toMatchObject({ user: 'alice' });
      presence.faults.clear();
      await again.subscribe('room:p');
      expect((await again.call('presence', { channel: 'room:p' })).users).toEqual(['alice']);
    },
  );

  it('presence.get throwing answers the presence command with an error; the connection goes on', async () => {
    const { server, presence } = await setup();
    const alice = await server.client({ user: 'alice' });
    await alice.subscribe('room:p');
    presence.faults.throw('get', new HubError(114));
    const { id, reply } = await send(alice, 'presence', { channel: 'room:p' });
    expectTemporaryError(reply, 114);
    await sentinel(alice);
    expect(repliesTo(alice, id)).toHaveLength(1);
    presence.faults.clear();
    expect((await alice.call('presence', { channel: 'room:p' })).users).toEqual(['alice']);
  });
});

describe('store fails', () => {
  const cases = [
    {
      command: 'markRead',
      storeMethod: 'markRead',
      params: { channel: 'room:r', offset: 1 },
      match: (_u: string, ch: string) => ch === 'room:r',
    },
    { command: 'readState', storeMethod: 'lastRead', params: { channel: 'room:r' }, match: (_u: string, ch: string) => ch === 'room:r' },
    {
      command: 'setStatus',
      storeMethod: 'setStatus',
      params: { status: 'away' },
      match: (_u: string, r: { status: string }) => r.status === 'away',
    },
  ] as const;

  for (const { what, error, code } of errorCases) {
    it.each(cases)(`store.$storeMethod throwing ${what} answers $command with ${code}; the connection goes on`, async (c) => {
      const { server, store } = await setup();
      await server.hub.publish('room:r', { n: 1 });
      const alice = await server.client({ user: 'alice' });
      store.faults.throw(c.storeMethod, error, { match: c.match as (...args: any[]) => boolean });

      const { id, reply } = await send(alice, c.command, c.params);
      expectTemporaryError(reply, code);
      await sentinel(alice);
      expect(repliesTo(alice, id)).toHaveLength(1);

      store.faults.clear();
      const ok = await alice.call(c.command, c.params);
      expect(ok).toBeTypeOf('object');
      expect(alice.isOpen).toBe(true);
    });
  }
});

describe('broker.publishEvent fails', () => {
  it('throwing on a typing signal answers it with an error; nobody gets a typing push, everything else goes on', async () => {
    const { server, broker } = await setup();
    const alice = await server.client({ user: 'alice' });
    const bob = await server.client({ user: 'bob' });
    await bob.subscribe('room:t');
    await alice.subscribe('room:t');
    broker.faults.throw('publishEvent', undefined, { match: (_ch: string, event: { kind: string }) => event.kind === 'typing' });

    const { id, reply } = await send(alice, 'typing', { channel: 'room:t', typing: true });
    expectTemporaryError(reply, 100);
    await sentinel(alice);
    expect(repliesTo(alice, id)).toHaveLength(1);

    // Sentinel publication: bob got no typing push before it.
    await alice.publish('room:t', { n: 'after' });
    await bob.waitFor((m) => m.push === 'pub' && m.data?.n === 'after');
    const upTo = bob.messages.findIndex((m) => m.push === 'pub' && m.data?.n === 'after');
    expect(bob.messages.slice(0, upTo).filter((m) => m.push === 'typing')).toEqual([]);
    expect(alice.isOpen && bob.isOpen).toBe(true);
  });
});

describe('broker delivery fails', () => {
  it('a dropped delivery is noticed at the next publication: unsubscribe 2001, and recovery gets both', async () => {
    const { server, broker } = await setup();
    const alice = await server.client({ user: 'alice' });
    const sub = await alice.subscribe('chat:g');
    broker.faults.drop('onPublication', { match: channelIs('chat:g'), times: 1 });

    await server.hub.publish('chat:g', { n: 1 }); // lost on the way to the node
    await server.hub.publish('chat:g', { n: 2 }); // reveals the gap
    const push = await alice.waitFor((m) => m.push === 'unsubscribe' && m.channel === 'chat:g');
    expect(push).toMatchObject({ code: 2001, resubscribe: true });
    expect(alice.pubs('chat:g')).toEqual([]);

    const again = await alice.subscribe('chat:g', sub.position);
    expect(again.recovered).toBe(true);
    expect(again.publications.map((p: any) => p.data.n)).toEqual([1, 2]);
  });
});

describe('slow storage while the client goes away', () => {
  it('a slow history read while the client disconnects leaks neither the connection nor the subscription', async () => {
    const { server, broker } = await setup();
    const alice = await server.client({ user: 'alice' });
    broker.faults.delay('history', 300, { match: channelIs('chat:slow') });
    const calls = broker.faults.calls('history');
    const settled = broker.faults.settled('history');

    alice.sendLines({ id: alice.id(), method: 'subscribe', params: { channel: 'chat:slow' } });
    await broker.faults.waitForCalls('history', calls + 1);
    alice.terminate();
    await until(() => server.hub.stats().connections === 0, 'the connection to be released');
    await broker.faults.waitForSettled('history', settled + 1);
    await until(() => server.hub.stats().channels === 0, 'the subscription index to be empty');
    expect(server.hub.stats()).toMatchObject({ connections: 0, channels: 0 });

    // The channel still works for the next subscriber.
    broker.faults.clear();
    const bob = await server.client({ user: 'bob' });
    await bob.subscribe('chat:slow');
    await server.hub.publish('chat:slow', { n: 1 });
    await bob.waitFor((m) => m.push === 'pub' && m.channel === 'chat:slow');
  });

  it('a slow presence.add while the client disconnects does not leave the client in presence', async () => {
    const { server, presence } = await setup();
    const watcher = await server.client({ user: 'watcher' });
    await watcher.subscribe('room:p');
    const alice = await server.client({ user: 'alice' });
    presence.faults.delay('add', 300, { match: channelIs('room:p') });
    const adds = presence.faults.calls('add');

    const { reply } = await send(alice, 'subscribe', { channel: 'room:p' });
    expect(reply.result).toBeDefined();
    const aliceClient = alice.connectResult.client as string;
    await presence.faults.waitForCalls('add', adds + 1);
    alice.terminate();
    await until(() => server.hub.stats().connections === 1, 'alice to be released');
    await presence.faults.waitForSettled('add', adds + 1);
    // Eventually consistent: alice's entry is gone (polled, bounded).
    const clients = await eventually(
      async () => (await watcher.call('presence', { channel: 'room:p' })).clients as Record<string, unknown>,
      (c) => !Object.hasOwn(c, aliceClient),
    );
    expect(Object.keys(clients), 'presence of room:p after alice left').not.toContain(aliceClient);
    expect((await watcher.call('presence', { channel: 'room:p' })).users).toEqual(['watcher']);
  });
});
