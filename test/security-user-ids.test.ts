import { afterEach, describe, expect, it } from 'vitest';
import { decodeUserId, encodeUserId, MAX_CHANNEL_BYTES, notificationsChannel, userChannel } from '../src/channels/channels.js';
import { SwitchboardClient, type NotificationEvent } from '../src/client/index.js';
import * as sdkChannels from '../src/client/user-channel.js';
import { closeAllServers, createTestServer, TEST_API_KEY, until, type TestServer } from './support/harness.js';

const FAST = { minMs: 10, maxMs: 100, factor: 2 };
const clients: SwitchboardClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await closeAllServers();
});

/** An SDK client of `user`, connected. */
async function sdk(server: TestServer, user: string): Promise<SwitchboardClient> {
  const c = new SwitchboardClient(server.url, { token: await server.token(user, { ttl: 3600 }), backoff: FAST });
  clients.push(c);
  c.connect();
  await c.ready();
  return c;
}

/** User ids that do not fit the channel charset as they are. */
const AWKWARD = ['auth0|abc', 'ann+news@example.com', 'José', 'a,b', 'with space', 'x#y:z', 'tilde~7E', '😀', 'a~2Cb'];

describe('user ids outside the channel charset get their notifications', () => {
  it('hub.notify reaches auth0|abc, ann+news@example.com, José, a,b (and more) live through the SDK', async () => {
    const s = await createTestServer();
    for (const [i, user] of AWKWARD.entries()) {
      const c = await sdk(s, user);
      expect(c.notifications.channel).toBe(`notifications:#${encodeUserId(user)}`);
      const got: Array<NotificationEvent<{ n: number }>> = [];
      const sub = c.notifications.subscribe<{ n: number }>((n) => got.push(n));
      await sub.ready();
      await s.hub.notify(user, { n: i });
      await until(() => got.length === 1, `the notification of ${user}`);
      expect(got[0]).toMatchObject({ offset: 1, data: { n: i } });
      expect(await c.notifications.unreadCount()).toBe(1);
      expect((await c.notifications.list<{ n: number }>()).items).toEqual([{ offset: 1, data: { n: i } }]);
    }
  });

  it('POST /api/notify reaches them too', async () => {
    const s = await createTestServer();
    const c = await sdk(s, 'auth0|abc');
    const got: unknown[] = [];
    await c.notifications.subscribe((n) => got.push(n.data)).ready();
    const res = await fetch(`${s.httpUrl}/api/notify`, {
      method: 'POST',
      headers: { Authorization: `apikey ${TEST_API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ user: 'auth0|abc', data: { hi: 1 } }),
    });
    expect(res.status).toBe(200);
    await until(() => got.length === 1, 'the notification');
    expect(got).toEqual([{ hi: 1 }]);
  });

  it('publishing on the encoded channel from the server reaches the SDK (the resolver and the SDK agree)', async () => {
    const s = await createTestServer();
    for (const user of AWKWARD) {
      const c = await sdk(s, user);
      const got: unknown[] = [];
      await c.notifications.subscribe((n) => got.push(n.data)).ready();
      await s.hub.publish(notificationsChannel(user), { to: user });
      await until(() => got.length === 1, `the publication for ${user}`);
      expect(got).toEqual([{ to: user }]);
    }
  });
});

describe('user-limited channels compare decoded user ids', () => {
  it('"a,b" cannot be impersonated by users "a" or "b"', async () => {
    const s = await createTestServer();
    const victim = await s.client({ user: 'a,b' });
    const a = await s.client({ user: 'a' });
    const b = await s.client({ user: 'b' });
    const channel = notificationsChannel('a,b');
    expect(channel).toBe('notifications:#a~2Cb');
    expect((await victim.subscribe(channel)).position).toBeDefined();
    for (const intruder of [a, b]) {
      expect(await intruder.errorCode('subscribe', { channel })).toBe(103);
      expect(await intruder.errorCode('history', { channel })).toBe(103);
      expect(await intruder.errorCode('readState', { channel })).toBe(103);
    }
    // `#a,b` is the channel of the two users a and b — not the notifications of "a,b".
    await a.subscribe('notifications:#a,b');
    expect(await victim.errorCode('subscribe', { channel: 'notifications:#a,b' })).toBe(103);
    await s.hub.notify('a,b', { secret: 1 });
    await victim.waitForPushes(1, (m) => m.push === 'pub');
    expect(victim.pubs(channel).map((p) => p.data)).toEqual([{ secret: 1 }]);
    expect(a.pubs()).toEqual([]);
    expect(b.pubs()).toEqual([]);
  });

  it('a DM channel built with userChannel admits exactly its users', async () => {
    const s = await createTestServer({ namespaces: { dm: {} } });
    const users = ['auth0|x', 'José', 'c,d'];
    const channel = userChannel('dm', users);
    expect(channel).toBe('dm:#auth0~7Cx,Jos~C3~A9,c~2Cd');
    for (const user of users) await (await s.client({ user })).subscribe(channel);
    for (const user of ['c', 'd', 'auth0', 'Jos', 'auth0~7Cx', 'Jos~C3~A9', 'c~2Cd'])
      expect(await (await s.client({ user })).errorCode('subscribe', { channel }), user).toBe(103);
  });

  it('refuses a # part that is not exactly the encoding with 107', async () => {
    const s = await createTestServer({ namespaces: { dm: {} } });
    const c = await s.client({ user: 'A' });
    for (const channel of [
      'notifications:#~ZZ',
      'notifications:#~7c', // lowercase hex
      'notifications:#~41', // a kept byte, encoded
      'notifications:#a~2',
      'notifications:#a~',
      'notifications:#~C3', // not UTF-8
      'notifications:#~ED~A0~80', // a surrogate
      'notifications:#a=b',
      'notifications:#a/b',
      'notifications:#a:b',
      'dm:#a#b',
      'dm:#A,~zz',
    ]) {
      expect(await c.errorCode('subscribe', { channel }), channel).toBe(107);
    }
    await expect(s.hub.publish('dm:#~41', 1)).rejects.toMatchObject({ code: 107 });
    expect((await c.subscribe('notifications:#A')).position).toBeDefined();
  });

  it('names over 255 bytes once encoded are refused with 107', async () => {
    const s = await createTestServer();
    const room = MAX_CHANNEL_BYTES - 'notifications:#'.length;
    await s.hub.notify('x'.repeat(room), 1);
    await expect(s.hub.notify('x'.repeat(room + 1), 1)).rejects.toMatchObject({ code: 107 });
    await s.hub.notify('é'.repeat(room / 6), 1); // 6 characters each: ~C3~A9
    await expect(s.hub.notify('é'.repeat(room / 6 + 1), 1)).rejects.toMatchObject({ code: 107 });
    await expect(s.hub.notify('|'.repeat(room / 3 + 1), 1)).rejects.toMatchObject({ code: 107 });
  });
});

/** Seeded random strings over every kind of code point: kept ASCII, other ASCII, 2-, 3- and 4-byte UTF-8, lone surrogates. */
function randomStrings(count: number, seed = 7): string[] {
  let x = seed;
  const rand = (n: number): number => {
    x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
    return x % n;
  };
  const pick = (): string => {
    switch (rand(7)) {
      case 0:
        return 'aZ09_.@-'[rand(8)]!;
      case 1:
        return String.fromCharCode(rand(128));
      case 2:
        return '~,#:%+|= '[rand(9)]!;
      case 3:
        return String.fromCharCode(0x80 + rand(0x800 - 0x80));
      case 4:
        return String.fromCharCode(0x800 + rand(0xd800 - 0x800));
      case 5:
        return String.fromCodePoint(0x10000 + rand(0x110000 - 0x10000));
      default:
        return String.fromCharCode(0xd800 + rand(0x800)); // usually lone
    }
  };
  return Array.from({ length: count }, () => Array.from({ length: rand(12) }, pick).join(''));
}

const wellFormed = (s: string): boolean => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

describe('encodeUserId / decodeUserId', () => {
  it('keeps A-Z a-z 0-9 _ . @ - and writes every other UTF-8 byte as ~XX', () => {
    expect(encodeUserId('alice')).toBe('alice');
    expect(encodeUserId('a.b_c-d@e')).toBe('a.b_c-d@e');
    expect(encodeUserId('auth0|abc')).toBe('auth0~7Cabc');
    expect(encodeUserId('ann+news@example.com')).toBe('ann~2Bnews@example.com');
    expect(encodeUserId('José')).toBe('Jos~C3~A9');
    expect(encodeUserId('a,b')).toBe('a~2Cb');
    expect(encodeUserId('~')).toBe('~7E');
    expect(encodeUserId('😀')).toBe('~F0~9F~98~80');
    expect(decodeUserId('Jos~C3~A9')).toBe('José');
    expect(decodeUserId('a~2Cb')).toBe('a,b');
    for (const bad of ['~ZZ', '~7c', '~41', '~2', 'a b', 'a,b', '~C3', '~ED~A0~80', '~C0~80'])
      expect(decodeUserId(bad), bad).toBeUndefined();
  });

  it('is exact and injective on random strings, and every encoding is a valid channel name', () => {
    const seen = new Map<string, string>();
    for (const user of randomStrings(5_000)) {
      const encoded = encodeUserId(user);
      expect(encoded).toMatch(/^[A-Za-z0-9_.@~-]*$/);
      expect(decodeUserId(encoded)).toBe(wellFormed(user) ? user : undefined);
      const other = seen.get(encoded);
      if (other !== undefined) expect(other).toBe(user);
      seen.set(encoded, user);
    }
  });

  it('the SDK copy agrees with the server on random strings', () => {
    for (const user of [...AWKWARD, '', ...randomStrings(5_000, 99)]) {
      expect(sdkChannels.encodeUserId(user), JSON.stringify(user)).toBe(encodeUserId(user));
      expect(sdkChannels.notificationsChannel(user)).toBe(notificationsChannel(user));
      const encoded = encodeUserId(user);
      expect(sdkChannels.decodeUserId(encoded)).toBe(decodeUserId(encoded));
    }
    expect(sdkChannels.userChannel('dm', ['a,b', 'c'])).toBe(userChannel('dm', ['a,b', 'c']));
    for (const junk of ['~ZZ', '~7c', '~41', 'a b', '~C3', 'ok']) expect(sdkChannels.decodeUserId(junk)).toBe(decodeUserId(junk));
  });
});
