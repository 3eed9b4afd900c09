/**
 * Identity: anonymous sessions are not one user for the per-user cap, the onSubscribe hook
 * guards every read right (presence) and `any`-mode publishing, and a token refresh narrows a
 * session as well as extending it.
 */
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { HubError } from '../src/index.js';
import { closeAllServers, createTestServer, nowSeconds, TEST_SECRET } from './support/harness.js';
import type { ProtocolClient } from './support/protocol-client.js';

afterEach(closeAllServers);

const key = new TextEncoder().encode(TEST_SECRET);

/** An HS256 token with exactly these claims (no exp unless given). */
function token(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(key);
}

describe('anonymous connections and the per-user cap', () => {
  it('(a) with allowAnonymous, 5 anonymous connections are admitted under maxConnectionsPerUser 3', async () => {
    const s = await createTestServer({
      auth: { allowAnonymous: true },
      limits: { maxConnectionsPerUser: 3 },
      namespaces: { room: { presence: true, joinLeave: true } },
    });
    const anon: Array<ProtocolClient & { connectResult?: any }> = [];
    for (let i = 0; i < 5; i++) anon.push(await s.client({ token: null }));
    for (const c of anon) {
      expect(c.connectResult.user).toBe('');
      expect(await c.call('ping')).toEqual({});
      expect(c.isOpen).toBe(true);
    }
    expect(s.hub.stats().connections).toBe(5);
    // In presence each is its own client, none of them a user.
    for (const c of anon) await c.subscribe('room:lobby');
    const named = await s.client({ user: 'carol' });
    await named.subscribe('room:lobby');
    const presence = await named.call('presence', { channel: 'room:lobby' });
    expect(Object.keys(presence.clients)).toHaveLength(6);
    expect(presence.users).toEqual(['carol']);
    // A named user is still capped.
    for (let i = 0; i < 3; i++) await s.client({ user: 'bob' });
    const fourth = await s.client({ user: 'bob', connect: false });
    expect(await fourth.errorCode('connect', { token: await s.token('bob') })).toBe(106);
    expect((await fourth.waitForClose()).code).toBe(4007);
  });
});

describe('the onSubscribe hook guards presence and any-mode publish', () => {
  it('(b) a hook throwing HubError(103) refuses presence and publish (clientPublish: any) on that channel', async () => {
    const calls: string[] = [];
    const s = await createTestServer({
      namespaces: { open: { presence: true, clientPublish: 'any' } },
      hooks: {
        onSubscribe: (_ctx, channel) => {
          calls.push(channel);
          if (channel === 'open:secret') throw new HubError(103, 'not for you');
        },
      },
    });
    const c = await s.client();
    expect(await c.errorCode('presence', { channel: 'open:secret' })).toBe(103);
    expect(calls).toEqual(['open:secret']);
    expect(await c.errorCode('publish', { channel: 'open:secret', data: { x: 1 } })).toBe(103);
    expect(calls).toEqual(['open:secret', 'open:secret']);
    expect(await c.errorCode('subscribe', { channel: 'open:secret' })).toBe(103);
    // Nothing was published on the refused channel.
    const watcher = await s.client({ user: 'bob' });
    const hist = await watcher.request('history', { channel: 'open:secret' });
    expect(hist.error?.code).toBe(103);

    // The same calls on an allowed channel pass (and run the hook too).
    expect(await c.call('presence', { channel: 'open:fine' })).toEqual({ clients: {}, users: [] });
    const pos = await c.publish('open:fine', { x: 1 });
    expect(pos.offset).toBe(1);
    expect(calls.filter((ch) => ch === 'open:fine').length).toBe(2);
    expect(c.isOpen).toBe(true);
  });
});

describe('refresh', () => {
  it('(c) a refresh granting fewer channels ends the others with an unsubscribe push 2000; the granted one keeps flowing', async () => {
    const s = await createTestServer({ namespaces: { room: { subscribe: 'claim' } } });
    const c = await s.client({ tokenExtra: { channels: ['room:a', 'room:b'] } });
    await c.subscribe('room:a');
    await c.subscribe('room:b');
    await s.hub.publish('room:b', { before: true });
    await c.waitFor((m) => m.push === 'pub' && m.channel === 'room:b');

    const narrower = await s.token('alice', { channels: ['room:a'], ttl: 7200 });
    const r = await c.call('refresh', { token: narrower });
    expect(r.expires).toBeGreaterThan(nowSeconds() + 3600);
    const unsub = await c.waitFor((m) => m.push === 'unsubscribe');
    expect(unsub).toMatchObject({ channel: 'room:b', code: 2000, resubscribe: false });
    expect(c.pushes('unsubscribe')).toHaveLength(1);

    await s.hub.publish('room:b', { after: true });
    const sentinel = await s.hub.publish('room:a', { sentinel: true });
    await c.waitFor((m) => m.push === 'pub' && m.channel === 'room:a' && m.offset === sentinel.offset);
    expect(c.pubs('room:b').map((p) => p.data)).toEqual([{ before: true }]);
    expect(c.pubs('room:a').map((p) => p.data)).toEqual([{ sentinel: true }]);
    // Not permitted any more.
    expect(await c.errorCode('subscribe', { channel: 'room:b' })).toBe(103);
    expect(c.isOpen).toBe(true);
  });

  it('(c) a refresh token of another user is refused with 101 and changes nothing', async () => {
    const s = await createTestServer({ namespaces: { room: { subscribe: 'claim' } } });
    const c = await s.client({ tokenExtra: { channels: ['room:a'] } });
    await c.subscribe('room:a');
    expect(await c.errorCode('refresh', { token: await s.token('mallory', { channels: [] }) })).toBe(101);
    const sentinel = await s.hub.publish('room:a', { still: true });
    await c.waitFor((m) => m.push === 'pub' && m.offset === sentinel.offset);
    expect(c.pushes('unsubscribe')).toEqual([]);
  });

  it('(c) a refresh token without exp is refused with 101, and the session keeps its old expiry', async () => {
    const s = await createTestServer();
    const exp = nowSeconds() + 2;
    const c = await s.client({ token: await token({ sub: 'alice', exp }) });
    expect(c.connectResult.expires).toBe(exp);
    const reply = await c.request('refresh', { token: await token({ sub: 'alice' }) });
    expect(reply.error?.code).toBe(101);
    expect(c.isOpen).toBe(true);
    // Had the refresh taken, the session would never expire; it still ends at the old exp.
    const closed = await c.waitForClose(10_000);
    expect(closed.code).toBe(4003);
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000);
  });
});
