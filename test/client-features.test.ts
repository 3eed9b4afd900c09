import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ClientError,
  ClientErrorCode,
  SwitchboardClient,
  type ClientOptions,
  type NotificationEvent,
  type PresenceEntry,
  type ReadEvent,
  type StatusEvent,
  type TypingEvent,
} from '../src/client/index.js';
import { closeAllServers, createTestServer, sleep, until, type TestServer } from './support/harness.js';

const FAST = { minMs: 10, maxMs: 100, factor: 2 };
const room = { namespaces: { room: { presence: true, joinLeave: true, typing: true, readReceipts: true } } };
const clients: SwitchboardClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await closeAllServers();
});

/** An SDK client of `user` (not connected yet). */
async function sdk(server: TestServer, user: string, options: ClientOptions = {}): Promise<SwitchboardClient> {
  const c = new SwitchboardClient(server.url, { token: await server.token(user, { ttl: 3600 }), backoff: FAST, ...options });
  clients.push(c);
  return c;
}

/** A WebSocket that records the commands the client sends. */
function spyingWebSocket(sent: Array<Record<string, unknown>>): typeof WebSocket {
  return class extends WebSocket {
    override send(data: string, ...rest: unknown[]): void {
      for (const line of String(data).split('\n')) if (line) sent.push(JSON.parse(line) as Record<string, unknown>);
      (super.send as (...args: unknown[]) => void)(data, ...rest);
    }
  };
}

describe('SDK: channel presence', () => {
  it('counts two tabs of one user as one: no leave when one closes, exactly one when both have', async () => {
    const server = await createTestServer(room);
    const watcher = await sdk(server, 'watcher');
    const joins: PresenceEntry[] = [];
    const leaves: PresenceEntry[] = [];
    const markers: unknown[] = [];
    const sub = watcher.subscribe('room:a', {
      onJoin: (i) => joins.push(i),
      onLeave: (i) => leaves.push(i),
      onPublication: (p) => markers.push(p.data),
    });
    watcher.connect();
    await sub.ready();
    /** A publication after everything sent so far: once it arrives, any join or leave before it has too. */
    const sentinel = async (): Promise<void> => {
      const marker = { sentinel: markers.length };
      await server.hub.publish('room:a', marker);
      await until(() => markers.some((m) => (m as { sentinel?: number }).sentinel === marker.sentinel), 'the sentinel publication');
    };

    const tabs = [await sdk(server, 'alice'), await sdk(server, 'alice')];
    for (const tab of tabs) {
      const s = tab.subscribe('room:a');
      tab.connect();
      await s.ready();
    }
    await until(() => joins.length >= 1, 'alice joins');
    const presence = await sub.presence();
    expect(presence.users).toEqual(['alice', 'watcher']);
    expect(Object.values(presence.clients).filter((c) => c.user === 'alice')).toHaveLength(2);
    expect((await watcher.presence('room:a')).users).toEqual(['alice', 'watcher']);

    tabs[0]!.disconnect();
    for (let i = 0; i < 500 && Object.keys((await sub.presence()).clients).length !== 2; i++) await sleep(10);
    expect(Object.keys((await sub.presence()).clients)).toHaveLength(2);
    await sentinel();
    expect(leaves).toHaveLength(0);

    tabs[1]!.disconnect();
    await until(() => leaves.length >= 1, 'alice leaves');
    await sentinel();
    expect(joins.map((j) => j.user)).toEqual(['alice']);
    expect(leaves.map((l) => l.user)).toEqual(['alice']);
    expect((await sub.presence()).users).toEqual(['watcher']);
  });
});

describe('SDK: typing indicators', () => {
  it('sends a burst of 50 typing(true) in about 1 s as at most one signal per throttle period; the indicator clears by itself; typing(false) is sent when told', async () => {
    // Expiry well above the 1 s typing throttle (as with the defaults: 1 s and 5 s), else the
    // indicator would lapse between two signals of someone still typing (more so on a loaded machine).
    const throttleMs = 1_000;
    const server = await createTestServer({ ...room, limits: { typingThrottleMs: throttleMs, typingExpireMs: 3_000 } });
    const bob = await sdk(server, 'bob');
    const seen: TypingEvent[] = [];
    const bobSub = bob.subscribe('room:t', { onTyping: (e) => seen.push(e) });
    bob.connect();
    await bobSub.ready();

    const sent: Array<Record<string, unknown>> = [];
    const alice = await sdk(server, 'alice', { WebSocket: spyingWebSocket(sent) });
    const own: TypingEvent[] = [];
    const sub = alice.subscribe('room:t', { onTyping: (e) => own.push(e) });
    alice.connect();
    await sub.ready();
    const typingSent = (typing: boolean): number =>
      sent.filter((m) => m.method === 'typing' && (m.params as { typing: boolean }).typing === typing).length;

    const burstStarted = Date.now();
    for (let i = 0; i < 50; i++) {
      sub.typing(true);
      await sleep(20);
    }
    // Measured, not assumed: on a loaded machine the burst takes longer than 50 × 20 ms.
    const atMost = Math.ceil((Date.now() - burstStarted) / throttleMs) + 1;
    // Not refreshed any more: the server clears it, without a typing(false) from the client.
    await until(() => seen.some((e) => !e.typing), 'the indicator clears by itself', 15_000);
    const started = seen.filter((e) => e.typing);
    expect(started.length).toBeGreaterThanOrEqual(1);
    expect(started.length).toBeLessThanOrEqual(atMost);
    expect(seen[0]).toEqual({ user: 'alice', typing: true });
    expect(seen.filter((e) => !e.typing)).toEqual([{ user: 'alice', typing: false }]);
    expect(typingSent(true)).toBeGreaterThanOrEqual(1);
    expect(typingSent(true)).toBeLessThanOrEqual(atMost);
    expect(typingSent(false)).toBe(0);
    expect(own).toHaveLength(0);

    // Typing again, then told to stop: one typing(false) goes out and reaches bob.
    seen.length = 0;
    sub.typing(true);
    await until(() => seen.some((e) => e.typing), 'typing again');
    sub.typing(false);
    sub.typing(false); // nothing more to say
    await until(() => seen.some((e) => !e.typing), 'typing stopped');
    expect(seen).toEqual([
      { user: 'alice', typing: true },
      { user: 'alice', typing: false },
    ]);
    expect(typingSent(false)).toBe(1);
    expect(() => sub.typing('yes' as unknown as boolean)).toThrow(ClientError);
  });
});

describe('SDK: read receipts', () => {
  it('never moves a read position backwards, gives unread = top − lastRead, and pushes read receipts', async () => {
    const server = await createTestServer(room);
    for (let i = 1; i <= 10; i++) await server.hub.publish('room:r', { i });
    const bob = await sdk(server, 'bob');
    const reads: ReadEvent[] = [];
    const bobSub = bob.subscribe('room:r', { onRead: (e) => reads.push(e) });
    bob.connect();
    await bobSub.ready();
    const alice = await sdk(server, 'alice');
    const sub = alice.subscribe('room:r');
    alice.connect();
    await sub.ready();

    const states = [await sub.markRead(7), await sub.markRead(4), await sub.readState()];
    for (const s of states) {
      expect(s).toMatchObject({ lastRead: 7, top: 10, unread: 3 });
      expect(s.unread).toBe(s.top - s.lastRead);
      expect(typeof s.epoch).toBe('string');
    }
    await until(() => reads.some((r) => r.user === 'alice' && r.offset === 7), 'read receipt');
    expect(reads.every((r) => r.offset === 7)).toBe(true);

    await server.hub.publish('room:r', { i: 11 });
    expect(await sub.readState()).toMatchObject({ lastRead: 7, top: 11, unread: 4 });
    expect(await sub.markRead()).toMatchObject({ lastRead: 11, top: 11, unread: 0 });
    expect(await sub.markRead(2)).toMatchObject({ lastRead: 11, unread: 0 });
    expect(await sub.readers()).toEqual({ alice: 11 });
    await expect(sub.markRead(-1)).rejects.toMatchObject({ code: ClientErrorCode.BAD_ARGUMENT });
  });
});

describe('SDK: notifications', () => {
  it('counts notifications sent while offline on two devices, pages them, and keeps counts right across mark-read and reconnects', async () => {
    const server = await createTestServer();
    for (let n = 1; n <= 3; n++) await server.hub.notify('carol', { n });

    const phone = await sdk(server, 'carol');
    const laptop = await sdk(server, 'carol');
    expect(() => phone.notifications).toThrow(ClientError);
    phone.connect();
    laptop.connect();
    await Promise.all([phone.ready(), laptop.ready()]);

    for (const device of [phone, laptop]) {
      expect(device.notifications.user).toBe('carol');
      expect(await device.notifications.unreadCount()).toBe(3);
      const first = await device.notifications.list<{ n: number }>({ limit: 2 });
      expect(first.items).toEqual([
        { offset: 3, data: { n: 3 } },
        { offset: 2, data: { n: 2 } },
      ]);
      expect(first.next).toBe(2);
      const second = await device.notifications.list<{ n: number }>({ limit: 2, before: first.next! });
      expect(second.items).toEqual([{ offset: 1, data: { n: 1 } }]);
      expect(second.next).toBeUndefined();
    }

    // Live on the phone: the notification and the count.
    const got: Array<NotificationEvent<{ n: number }>> = [];
    const counts: number[] = [];
    phone.notifications.onUnreadChange((c) => counts.push(c));
    const sub = phone.notifications.subscribe<{ n: number }>((n) => got.push(n));
    await sub.ready();
    await until(() => counts.at(-1) === 3, 'the count is known');
    await server.hub.notify('carol', { n: 4 });
    await until(() => got.length === 1 && counts.at(-1) === 4, 'notification 4');
    expect(got[0]).toEqual({ offset: 4, data: { n: 4 }, recovered: false });

    // Marked on the phone: its own count follows at once.
    expect(await phone.notifications.markRead(2)).toMatchObject({ lastRead: 2, top: 4, unread: 2 });
    expect(counts.at(-1)).toBe(2);
    expect(await laptop.notifications.unreadCount()).toBe(2);

    // Everything marked on the laptop: the phone sees 0 once it re-reads.
    expect(await laptop.notifications.markAllRead()).toMatchObject({ lastRead: 4, unread: 0 });
    expect(await laptop.notifications.unreadCount()).toBe(0);
    expect(await phone.notifications.unreadCount()).toBe(0);
    expect(counts.at(-1)).toBe(0);

    // Offline, a notification arrives and the laptop reads it: after the reconnect the phone
    // recovers it and its count is re-read (0, since the laptop read everything).
    phone.disconnect();
    await server.hub.notify('carol', { n: 5 });
    expect(await laptop.notifications.unreadCount()).toBe(1);
    phone.connect();
    await until(() => got.length === 2 && counts.at(-1) === 1, 'recovered notification 5');
    expect(got[1]).toEqual({ offset: 5, data: { n: 5 }, recovered: true });
    phone.disconnect();
    await laptop.notifications.markAllRead();
    phone.connect();
    await until(() => counts.at(-1) === 0, 'count re-read after reconnect');
    expect(phone.notifications.unread).toBe(0);
    expect(counts.every((c, i) => i === 0 || c !== counts[i - 1])).toBe(true);
    await expect(phone.notifications.list({ limit: 0 })).rejects.toMatchObject({ code: ClientErrorCode.BAD_ARGUMENT });
  });
});

describe('SDK: user status', () => {
  it('delivers setStatus to a watcher and answers statuses for many users', async () => {
    const server = await createTestServer();
    const watcher = await sdk(server, 'watcher');
    watcher.connect();
    await watcher.ready();
    const events: StatusEvent[] = [];
    const stop = watcher.watchStatus('dave', (e) => events.push(e));
    await until(() => events.length >= 1, 'the current status');
    expect(events[0]).toMatchObject({ user: 'dave', status: 'offline' });

    const dave = await sdk(server, 'dave');
    dave.connect();
    await dave.ready();
    await until(() => events.some((e) => e.status === 'online'), 'dave online');
    expect(await dave.setStatus('away')).toMatchObject({ status: 'away' });
    await until(() => events.some((e) => e.status === 'away'), 'dave away');
    expect(events.at(-1)).toMatchObject({ user: 'dave', status: 'away' });
    expect(events.at(-1)!.lastSeen).toBeGreaterThan(0);

    const all = await watcher.statuses(['dave', 'watcher', 'nobody']);
    expect(all.dave!.status).toBe('away');
    expect(all.watcher!.status).toBe('online');
    expect(all.nobody).toEqual({ status: 'offline', lastSeen: 0 });

    dave.disconnect();
    await until(() => events.at(-1)?.status === 'offline', 'dave offline');
    stop();
    await until(() => watcher.getSubscription('status:dave') === undefined, 'unwatched');

    await expect(dave.setStatus('asleep' as never)).rejects.toMatchObject({ code: ClientErrorCode.BAD_ARGUMENT });
    await expect(watcher.statuses([])).rejects.toMatchObject({ code: ClientErrorCode.BAD_ARGUMENT });
  });
});
