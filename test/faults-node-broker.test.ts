/**
 * The Node's error paths when the Broker fails, through a real server and real WebSocket
 * clients, with the storage seams replaced by fault-injecting doubles (test/support/faults.ts)
 * over the real in-memory implementations: publish, history and subscribe calls that throw or
 * hang, channel events that fail, deliveries that are lost, slow history reads. The
 * PresenceStore and Store failures are in test/faults-node-stores.test.ts; the helpers (and the
 * sentinel that checks "exactly one reply") in test/support/node-faults.ts.
 */
import { describe, expect, it } from 'vitest';
import { HubError } from '../src/index.js';
import { until } from './support/harness.js';
import {
  channelIs,
  errorCases,
  expectTemporaryError,
  HANG_BOUND_MS,
  repliesTo,
  send,
  sentinel,
  useFaultyServers,
} from './support/node-faults.js';
import type { ServerMessage } from './support/protocol-client.js';

const setup = useFaultyServers();

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
});
