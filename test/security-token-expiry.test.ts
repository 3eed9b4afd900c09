import { SignJWT } from 'jose';
import { afterAll, describe, it } from 'vitest';
import { closeAllServers, createTestServer, nowSeconds, sleep, TEST_SECRET } from './support/harness.js';

// The tests here wait for real token expiry (exp has 1 s granularity), so they run concurrently.
afterAll(closeAllServers);

const WAIT_MS = 8_000;

describe.concurrent('token expiry during a session (BRIEF §5.3)', () => {
  it('closes the connection with 4003 (after a disconnect push) when the token expires', async ({ expect }) => {
    const s = await createTestServer();
    const c = await s.client({ tokenExtra: { ttl: 2 } });
    expect(c.connectResult.expires).toBeLessThanOrEqual(nowSeconds() + 2);
    await c.subscribe('chat:exp');
    await s.hub.publish('chat:exp', 'before');
    await c.waitForPushes(1, (m) => m.push === 'pub');
    const closed = await c.waitForClose(WAIT_MS);
    expect(closed.code).toBe(4003);
    expect(c.pushes('disconnect')).toEqual([expect.objectContaining({ code: 4003, reconnect: true })]);
    expect(Date.now()).toBeGreaterThanOrEqual(c.connectResult.expires * 1000 - 1000); // not closed early for no reason
    // Nothing more reaches an expired session.
    await s.hub.publish('chat:exp', 'after');
    expect(c.pubs('chat:exp').map((p) => p.data)).toEqual(['before']);
    expect(s.hub.stats().connections).toBe(0);
  });

  it('stays open past the old expiry after a refresh with a new token', async ({ expect }) => {
    const s = await createTestServer();
    const c = await s.client({ tokenExtra: { ttl: 2 } });
    const oldExpires: number = c.connectResult.expires;
    const r = await c.call('refresh', { token: await s.token('alice', { ttl: 60 }) });
    expect(r.expires).toBeGreaterThan(oldExpires);
    await sleep(oldExpires * 1000 - Date.now() + 2_500);
    expect(c.closeInfo).toBeUndefined();
    expect(await c.call('ping', {})).toEqual({});
    await c.subscribe('chat:still');
    await s.hub.publish('chat:still', 1);
    await c.waitForPushes(1, (m) => m.push === 'pub');
  });

  it('a refused refresh (other user, expired, bad signature, alg none) does not extend the session', async ({ expect }) => {
    const s = await createTestServer();
    const c = await s.client({ tokenExtra: { ttl: 2 } });
    const bob = await s.token('bob', { ttl: 60 });
    expect(await c.errorCode('refresh', { token: bob })).toBe(101);
    const expired = await new SignJWT({ sub: 'alice', exp: nowSeconds() - 5 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(TEST_SECRET));
    expect(await c.errorCode('refresh', { token: expired })).toBe(109);
    const forged = await new SignJWT({ sub: 'alice', exp: nowSeconds() + 60 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode('not-the-secret-0123456789abcdef-0123'));
    expect(await c.errorCode('refresh', { token: forged })).toBe(101);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'alice', exp: nowSeconds() + 60 })).toString('base64url')}.`;
    expect(await c.errorCode('refresh', { token: none })).toBe(101);
    const closed = await c.waitForClose(WAIT_MS);
    expect(closed.code).toBe(4003);
  });

  it('a handshake token expires the same way', async ({ expect }) => {
    const s = await createTestServer();
    const c = await s.open({ headers: { authorization: `Bearer ${await s.token('alice', { ttl: 2 })}` } });
    expect((await c.connect()).user).toBe('alice');
    expect((await c.waitForClose(WAIT_MS)).code).toBe(4003);
  });
});
