import { afterEach, describe, expect, it } from 'vitest';
import { HubError } from '../src/index.js';
import { closeAllServers, createTestServer, TEST_SECRET } from './support/harness.js';

afterEach(closeAllServers);

const namespaces = {
  chat: { clientPublish: 'subscribers' as const },
  notifications: { clientPublish: 'any' as const },
  dm: { clientPublish: 'subscribers' as const, presence: true },
  announce: { clientPublish: 'none' as const },
  open: { clientPublish: 'any' as const },
  private: { subscribe: 'claim' as const, clientPublish: 'any' as const },
};

describe('user-limited channels (BRIEF §5.4)', () => {
  it('notifications:#alice is open only to alice', async () => {
    const s = await createTestServer({ namespaces });
    const alice = await s.client({ user: 'alice' });
    const bob = await s.client({ user: 'bob' });
    const anon = await (
      await createTestServer({ namespaces, auth: { secret: TEST_SECRET, allowAnonymous: true } })
    ).client({ token: null });
    await alice.subscribe('notifications:#alice');
    expect(await bob.errorCode('subscribe', { channel: 'notifications:#alice' })).toBe(103);
    expect(await anon.errorCode('subscribe', { channel: 'notifications:#alice' })).toBe(103);
    expect(await bob.errorCode('subscribe', { channel: 'notifications:#alicex' })).toBe(103);
    expect(await alice.errorCode('subscribe', { channel: 'notifications:#alicex' })).toBe(103);
    expect(await alice.errorCode('subscribe', { channel: 'notifications:#bob' })).toBe(103);
    // Nor through history, presence or recovery.
    await s.hub.publish('notifications:#alice', { secret: 1 });
    expect(await bob.errorCode('history', { channel: 'notifications:#alice' })).toBe(103);
    const pos = await s.hub.publish('notifications:#alice', { secret: 2 });
    expect(await bob.errorCode('subscribe', { channel: 'notifications:#alice', since: { offset: 0, epoch: pos.epoch } })).toBe(103);
    await alice.waitForPushes(2, (m) => m.push === 'pub');
    expect(bob.pubs()).toEqual([]);
  });

  it('dm:#alice,bob is open to both and nobody else', async () => {
    const s = await createTestServer({ namespaces });
    const alice = await s.client({ user: 'alice' });
    const bob = await s.client({ user: 'bob' });
    const carol = await s.client({ user: 'carol' });
    await alice.subscribe('dm:#alice,bob');
    await bob.subscribe('dm:#alice,bob');
    expect(await carol.errorCode('subscribe', { channel: 'dm:#alice,bob' })).toBe(103);
    expect(await carol.errorCode('presence', { channel: 'dm:#alice,bob' })).toBe(103);
    expect(await carol.errorCode('subscribe', { channel: 'dm:#alice,bo' })).toBe(103);
    await alice.publish('dm:#alice,bob', 'hi bob');
    await bob.waitForPushes(1, (m) => m.push === 'pub' && m.data === 'hi bob');
    expect(carol.pubs()).toEqual([]);
  });

  it('publish to another user’s channel is refused even where any connection may publish', async () => {
    const s = await createTestServer({ namespaces });
    const alice = await s.client({ user: 'alice' });
    const bob = await s.client({ user: 'bob' });
    await alice.subscribe('notifications:#alice');
    expect(await bob.errorCode('publish', { channel: 'notifications:#alice', data: 'spoof' })).toBe(103);
    await bob.publish('notifications:#bob', 'mine'); // allowed: bob's own, clientPublish any
    await s.hub.publish('notifications:#alice', 'marker');
    await alice.waitForPushes(1, (m) => m.data === 'marker');
    expect(alice.pubs('notifications:#alice').map((p) => p.data)).toEqual(['marker']);
  });
});

describe('namespace permissions', () => {
  it('clientPublish none: nobody publishes from a client, subscribed or not', async () => {
    const s = await createTestServer({ namespaces });
    const c = await s.client();
    await c.subscribe('announce:x');
    expect(await c.errorCode('publish', { channel: 'announce:x', data: 1 })).toBe(103);
    expect((await s.hub.publish('announce:x', 1)).offset).toBe(1); // only the server did
  });

  it('clientPublish subscribers: checked on every publish (before, during, after a subscription)', async () => {
    const s = await createTestServer({ namespaces });
    const c = await s.client();
    expect(await c.errorCode('publish', { channel: 'chat:room', data: 'early' })).toBe(103);
    await c.subscribe('chat:room');
    await c.publish('chat:room', 'ok');
    await c.call('unsubscribe', { channel: 'chat:room' });
    expect(await c.errorCode('publish', { channel: 'chat:room', data: 'late' })).toBe(103);
    await c.subscribe('chat:room');
    await c.publish('chat:room', 'ok again');
    // The server ends the subscription: publishing stops working at once.
    await s.hub.unsubscribe('alice', 'chat:room');
    await c.waitForPushes(1, (m) => m.push === 'unsubscribe' && m.channel === 'chat:room');
    expect(await c.errorCode('publish', { channel: 'chat:room', data: 'kicked' })).toBe(103);
    const h = await (await s.client({ user: 'bob' })).call('history', { channel: 'chat:room' });
    expect(h.publications.map((p: { data: string }) => p.data)).toEqual(['ok', 'ok again']);
  });

  it('a subscription on another channel does not grant publish here', async () => {
    const s = await createTestServer({ namespaces });
    const c = await s.client();
    await c.subscribe('chat:a');
    expect(await c.errorCode('publish', { channel: 'chat:b', data: 1 })).toBe(103);
  });

  it('subscribe: claim needs the JWT channels claim (exact name or ns:* pattern)', async () => {
    const s = await createTestServer({ namespaces });
    const none = await s.client({ user: 'u1' });
    expect(await none.errorCode('subscribe', { channel: 'private:a' })).toBe(103);
    expect(await none.errorCode('history', { channel: 'private:a' })).toBe(103);
    expect(await none.errorCode('publish', { channel: 'private:a', data: 1 })).toBe(103);
    const exact = await s.client({ user: 'u2', tokenExtra: { channels: ['private:a'] } });
    await exact.subscribe('private:a');
    expect(await exact.errorCode('subscribe', { channel: 'private:b' })).toBe(103);
    expect(await exact.errorCode('subscribe', { channel: 'private:ab' })).toBe(103);
    const wildcard = await s.client({ user: 'u3', tokenExtra: { channels: ['private:*'] } });
    await wildcard.subscribe('private:b');
    const otherNs = await s.client({ user: 'u4', tokenExtra: { channels: ['chat:*', 'open:*'] } });
    expect(await otherNs.errorCode('subscribe', { channel: 'private:a' })).toBe(103);
  });

  it('an unknown namespace gets 102; a malformed channel 107', async () => {
    const s = await createTestServer({ namespaces });
    const c = await s.client();
    expect(await c.errorCode('subscribe', { channel: 'nosuch:x' })).toBe(102);
    expect(await c.errorCode('publish', { channel: 'nosuch:x', data: 1 })).toBe(102);
    expect(await c.errorCode('history', { channel: 'nosuch:x' })).toBe(102);
    expect(await c.errorCode('subscribe', { channel: 'chat:has space' })).toBe(107);
    expect(await c.errorCode('subscribe', { channel: `chat:${'x'.repeat(260)}` })).toBe(107);
    expect(await c.errorCode('subscribe', { channel: 'chat:ü' })).toBe(107);
    expect(await c.errorCode('subscribe', { channel: '' })).toBe(107);
    await expect(s.hub.publish('nosuch:x', 1)).rejects.toMatchObject({ code: 102 });
  });

  it('limits channels per connection (106) and refuses a double subscribe (105)', async () => {
    const s = await createTestServer({ namespaces, limits: { maxChannelsPerConnection: 2 } });
    const c = await s.client();
    await c.subscribe('chat:1');
    expect(await c.errorCode('subscribe', { channel: 'chat:1' })).toBe(105);
    await c.subscribe('chat:2');
    expect(await c.errorCode('subscribe', { channel: 'chat:3' })).toBe(106);
    await c.call('unsubscribe', { channel: 'chat:1' });
    await c.subscribe('chat:3');
    expect(await c.errorCode('unsubscribe', { channel: 'chat:1' })).toBe(112);
  });
});

describe('hooks', () => {
  it('onSubscribe can deny; onPublish can deny or replace the data; onConnect can refuse', async () => {
    const s = await createTestServer({
      namespaces,
      hooks: {
        onConnect(ctx) {
          if (ctx.user === 'banned') throw new HubError(1001, 'banned');
        },
        onSubscribe(ctx, channel) {
          if (channel === 'open:vip' && ctx.user !== 'vip') throw new HubError(103, 'vip only');
        },
        onPublish(ctx, channel, data) {
          if ((data as { text?: string }).text === 'bad word') throw new HubError(1002, 'moderated');
          if (channel === 'open:stamped') return { ...(data as object), by: ctx.user };
          return undefined;
        },
      },
    });
    const banned = await s.client({ user: 'banned', connect: false });
    const reply = await banned.request('connect', { token: await s.token('banned') });
    expect(reply.error?.code).toBe(1001);
    // The refused session ends after the error reply (4500, terminal).
    expect((await banned.waitForClose()).code).toBe(4500);

    const alice = await s.client();
    expect(await alice.errorCode('subscribe', { channel: 'open:vip' })).toBe(103);
    await (await s.client({ user: 'vip' })).subscribe('open:vip');

    const watcher = await s.client({ user: 'bob' });
    await watcher.subscribe('open:stamped');
    expect(await alice.errorCode('publish', { channel: 'open:stamped', data: { text: 'bad word' } })).toBe(1002);
    await alice.publish('open:stamped', { text: 'hello', by: 'mallory' });
    const [pub] = await watcher.waitForPushes(1, (m) => m.push === 'pub');
    expect(pub!.data).toEqual({ text: 'hello', by: 'alice' });
    // Sentinel (server side, past the hook): the refused publication never arrived before it.
    await s.hub.publish('open:stamped', { sentinel: true });
    await watcher.waitFor((m) => m.push === 'pub' && m.data?.sentinel === true);
    expect(watcher.pubs().map((m) => m.data)).toEqual([{ text: 'hello', by: 'alice' }, { sentinel: true }]);
  });

  it('an exception that is not a HubError in a hook is an internal error without details', async () => {
    const s = await createTestServer({
      namespaces,
      hooks: {
        onSubscribe() {
          throw new Error('database password is hunter2');
        },
      },
    });
    const c = await s.client();
    const reply = await c.request('subscribe', { channel: 'open:x' });
    expect(reply.error?.code).toBe(100);
    expect(JSON.stringify(reply)).not.toContain('hunter2');
    expect(await c.call('ping', {})).toEqual({});
  });
});
