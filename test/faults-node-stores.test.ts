/**
 * The Node's error paths when the PresenceStore or the Store fails, through a real server and
 * real WebSocket clients, with the storage seams replaced by fault-injecting doubles
 * (test/support/faults.ts) over the real in-memory implementations: presence calls that throw
 * on subscribe, disconnect and the presence command, read positions and statuses that fail,
 * slow presence writes. The Broker failures are in test/faults-node-broker.test.ts; the helpers
 * (and the sentinel that checks "exactly one reply") in test/support/node-faults.ts.
 */
import { describe, expect, it } from 'vitest';
import { ERRORS, HubError } from '../src/index.js';
import { until } from './support/harness.js';
import {
  channelIs,
  errorCases,
  eventually,
  expectTemporaryError,
  repliesTo,
  send,
  sentinel,
  useFaultyServers,
} from './support/node-faults.js';

const setup = useFaultyServers();

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

describe('slow storage while the client goes away', () => {
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
