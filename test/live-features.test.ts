import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer, sleep, TEST_API_KEY, until, type TestServer } from './support/harness.js';
import type { ProtocolClient } from './support/protocol-client.js';

const dirs: string[] = [];
afterEach(async () => {
  await closeAllServers();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sb-live-'));
  dirs.push(d);
  return d;
}

const room = { namespaces: { room: { presence: true, joinLeave: true, typing: true, readReceipts: true } } };

/**
 * Publishes a marker on `channel` from the server and waits for `client` to receive it: whatever
 * the hub sent `client` before (a leave, a status change) has arrived by then. Returns the
 * index of the marker in `client.messages`.
 */
async function sentinel(server: TestServer, client: ProtocolClient, channel: string): Promise<number> {
  const marker = Math.random();
  await server.hub.publish(channel, { sentinel: marker });
  await client.waitFor((m) => m.push === 'pub' && m.channel === channel && m.data?.sentinel === marker);
  return client.messages.findIndex((m) => m.push === 'pub' && m.data?.sentinel === marker);
}

describe('presence', () => {
  it('counts two tabs of one user as one user: one join, and one leave only when the last tab closes', async () => {
    const server = await createTestServer(room);
    const watcher = await server.client({ user: 'watcher' });
    await watcher.subscribe('room:a');
    const tab1 = await server.client({ user: 'alice' });
    const tab2 = await server.client({ user: 'alice' });
    await tab1.subscribe('room:a');
    await tab2.subscribe('room:a');
    await until(() => watcher.pushes('join').length >= 1, 'join');

    const presence = await watcher.call('presence', { channel: 'room:a' });
    expect(presence.users).toEqual(['alice', 'watcher']);
    expect(Object.values(presence.clients).filter((c: any) => c.user === 'alice')).toHaveLength(2);

    await tab1.close();
    for (let i = 0; i < 200 && Object.keys((await watcher.call('presence', { channel: 'room:a' })).clients).length !== 2; i++)
      await sleep(10);
    expect(Object.keys((await watcher.call('presence', { channel: 'room:a' })).clients)).toHaveLength(2);
    // tab1's departure is processed (presence shows it); a leave would come before this marker.
    await sentinel(server, watcher, 'room:a');
    expect(watcher.pushes('leave')).toHaveLength(0);
    await tab2.close();
    await watcher.waitFor((m) => m.push === 'leave');
    await sentinel(server, watcher, 'room:a');
    expect(watcher.pushes('join')).toHaveLength(1);
    expect(watcher.pushes('leave')).toHaveLength(1);
    expect(watcher.pushes('leave')[0]).toMatchObject({ channel: 'room:a', info: { user: 'alice' } });
    expect((await watcher.call('presence', { channel: 'room:a' })).users).toEqual(['watcher']);
  });
});

describe('typing indicators', () => {
  it('throttles a burst of 50 signals in about 1 s to at most one per throttle period, never echoes the sender, and clears by itself', async () => {
    const throttleMs = 1_000; // limits.typingThrottleMs (the default)
    const server = await createTestServer({ ...room, limits: { typingThrottleMs: throttleMs, typingExpireMs: 600 } });
    const bob = await server.client({ user: 'bob' });
    const alice = await server.client({ user: 'alice' });
    await bob.subscribe('room:t');
    await alice.subscribe('room:t');
    const started = Date.now();
    for (let i = 0; i < 50; i++) {
      await alice.call('typing', { channel: 'room:t', typing: true });
      await sleep(18);
    }
    // Measured, not assumed: on a loaded machine the burst takes longer than 50 × 18 ms.
    const elapsed = Date.now() - started;
    // Sentinel: every typing push the burst caused has reached bob before this publication.
    const end = await sentinel(server, bob, 'room:t');
    const during = bob.messages.slice(0, end).filter((m) => m.push === 'typing');
    const starts = during.filter((m) => m.typing === true);
    // An indicator that lapsed (no signal for typingExpireMs, only when the burst stalls) may start again at once.
    const lapses = during.filter((m) => m.typing === false).length;
    expect(starts.length).toBeGreaterThanOrEqual(1);
    expect(starts.length).toBeLessThanOrEqual(Math.ceil(elapsed / throttleMs) + 1 + lapses);
    expect(starts[0]).toMatchObject({ channel: 'room:t', user: 'alice', typing: true });
    expect(alice.pushes('typing')).toHaveLength(0);
    // No refresh: the indicator clears by itself, after the burst.
    const cleared = await bob.waitFor((m) => m.push === 'typing' && m.typing === false && bob.messages.indexOf(m) > end);
    expect(cleared).toMatchObject({ user: 'alice', channel: 'room:t' });
    // Typing is never stored.
    expect((await bob.call('history', { channel: 'room:t' })).publications.filter((p: any) => p.data.sentinel === undefined)).toEqual([]);
  });

  it('refuses typing where the namespace has it off or the client is not subscribed', async () => {
    const server = await createTestServer({ namespaces: { chat: {} } });
    const alice = await server.client({ user: 'alice' });
    expect(await alice.errorCode('typing', { channel: 'chat:x', typing: true })).toBe(112);
    await alice.subscribe('chat:x');
    expect(await alice.errorCode('typing', { channel: 'chat:x', typing: true })).toBe(108);
  });
});

describe('read receipts', () => {
  it('stores read positions that never move backwards, survive a restart, and give unread = top − lastRead', async () => {
    const dir = dataDir();
    const first = await createTestServer({ ...room, dataDir: dir });
    for (let i = 1; i <= 10; i++) await first.hub.publish('room:r', { i });
    const alice = await first.client({ user: 'alice' });
    const bob = await first.client({ user: 'bob' });
    await bob.subscribe('room:r');
    expect(await alice.call('markRead', { channel: 'room:r', offset: 7 })).toMatchObject({ lastRead: 7, top: 10, unread: 3 });
    expect(await alice.call('markRead', { channel: 'room:r', offset: 4 })).toMatchObject({ lastRead: 7, unread: 3 });
    await bob.waitFor((m) => m.push === 'read' && m.user === 'alice' && m.offset === 7);
    await first.close();

    const second = await createTestServer({ ...room, dataDir: dir });
    await second.hub.publish('room:r', { i: 11 });
    const again = await second.client({ user: 'alice' });
    expect(await again.call('readState', { channel: 'room:r' })).toMatchObject({ lastRead: 7, top: 11, unread: 4 });
    expect(await again.call('markRead', { channel: 'room:r', offset: 999 })).toMatchObject({ lastRead: 11, unread: 0 });
    expect((await again.call('readers', { channel: 'room:r' })).readers).toEqual({ alice: 11 });
  });
});

describe('notifications', () => {
  it('counts a notification sent while the user was offline as unread on two devices, lists it, and marks it read', async () => {
    const dir = dataDir();
    const server = await createTestServer({ dataDir: dir });
    const api = (path: string, body: unknown): Promise<Response> =>
      fetch(`${server.httpUrl}${path}`, {
        method: 'POST',
        headers: { authorization: `apikey ${TEST_API_KEY}` },
        body: JSON.stringify(body),
      });
    expect((await api('/api/notify', { user: 'carol', data: { text: 'first' } })).status).toBe(200);
    await server.hub.notify('carol', { text: 'second' });
    await server.close();

    const restarted = await createTestServer({ dataDir: dir });
    const phone = await restarted.client({ user: 'carol' });
    const laptop = await restarted.client({ user: 'carol' });
    const channel = 'notifications:#carol';
    for (const device of [phone, laptop]) {
      expect(await device.call('readState', { channel })).toMatchObject({ unread: 2, lastRead: 0, top: 2 });
      const list = await device.call('history', { channel, limit: 10 });
      expect(list.publications.map((p: any) => p.data.text)).toEqual(['first', 'second']);
    }
    await phone.call('markRead', { channel, offset: 1 });
    expect(await laptop.call('readState', { channel })).toMatchObject({ unread: 1 });
    await laptop.call('markRead', { channel }); // mark all read
    expect(await phone.call('readState', { channel })).toMatchObject({ unread: 0, lastRead: 2 });
    // Only carol may read carol's notifications, and clients cannot publish there.
    const mallory = await restarted.client({ user: 'mallory' });
    expect(await mallory.errorCode('readState', { channel })).toBe(103);
    expect(await phone.errorCode('publish', { channel, data: 'x' })).toBe(103);
  });
});

describe('user status', () => {
  it('goes online with the first connection, follows setStatus, goes offline with lastSeen, and is readable for many users', async () => {
    const server = await createTestServer();
    const watcher = await server.client({ user: 'watcher' });
    await watcher.subscribe('status:dave');
    const tab1 = await server.client({ user: 'dave' });
    const online = await watcher.waitFor((m) => m.push === 'pub' && m.channel === 'status:dave');
    expect(online.data).toMatchObject({ user: 'dave', status: 'online' });
    const tab2 = await server.client({ user: 'dave' });
    await tab2.call('setStatus', { status: 'away' });
    await watcher.waitFor((m) => m.push === 'pub' && m.data.status === 'away');
    await tab1.close();
    await until(() => server.hub.stats().connections === 2, 'tab1 to be released'); // watcher and tab2
    // An `offline` for tab1 (wrong: tab2 is still there) would come before this marker.
    await sentinel(server, watcher, 'status:dave');
    expect(
      watcher
        .pubs('status:dave')
        .filter((m) => m.data.sentinel === undefined)
        .map((m) => m.data.status),
    ).toEqual(['online', 'away']);
    await tab2.close();
    const offline = await watcher.waitFor((m) => m.push === 'pub' && m.data.status === 'offline');
    expect(offline.data.lastSeen).toBeGreaterThan(0);

    const viaSdk = await watcher.call('statuses', { users: ['dave', 'watcher', 'nobody'] });
    expect(viaSdk.users.dave.status).toBe('offline');
    expect(viaSdk.users.watcher.status).toBe('online');
    expect(viaSdk.users.nobody).toEqual({ status: 'offline', lastSeen: 0 });
    const res = await fetch(`${server.httpUrl}/api/status?user=dave&user=watcher`, {
      headers: { authorization: `apikey ${TEST_API_KEY}` },
    });
    expect(res.status).toBe(200);
    expect((await res.json()).users.watcher.status).toBe('online');
    expect(await watcher.errorCode('publish', { channel: 'status:dave', data: {} })).toBe(103);
  });
});
