/**
 * Teardown and bad input at the edges: kicks with long reasons release everything, a request
 * target that is not a URL gets 400 without hurting the server, binary frames are answered,
 * and oversized server-side publishes are refused.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HubError } from '../src/index.js';
import { closeAllServers, createTestServer, TEST_API_KEY, until, type TestServer } from './support/harness.js';
import { rawHttp } from './support/core-helpers.js';
import type { ProtocolClient } from './support/protocol-client.js';

afterEach(closeAllServers);

const api = (s: TestServer, path: string, body: unknown): Promise<Response> =>
  fetch(`${s.httpUrl}${path}`, { method: 'POST', headers: { authorization: `apikey ${TEST_API_KEY}` }, body: JSON.stringify(body) });

async function presenceUsers(s: TestServer, channel: string): Promise<string[]> {
  const res = await fetch(`${s.httpUrl}/api/presence?channel=${channel}`, { headers: { authorization: `apikey ${TEST_API_KEY}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { users: string[] }).users;
}

describe('POST /api/disconnect with a long reason', () => {
  for (const [label, reason] of [
    ['200 ASCII characters', 'r'.repeat(200)],
    ['200 two-byte characters', 'é'.repeat(200)],
    ['100 two-byte characters', 'é'.repeat(100)],
  ] as const) {
    it(`(a) ${label}: 200, closed with a reason of at most 123 bytes, everything released`, async () => {
      const s = await createTestServer({
        limits: { maxConnectionsPerUser: 3 },
        namespaces: { room: { presence: true } },
      });
      const ch = 'room:lobby';
      const observer = await s.client({ user: 'observer' });
      await observer.subscribe(ch);
      const base = s.hub.stats().connections;
      const kicked: ProtocolClient[] = [];
      for (let i = 0; i < 3; i++) {
        const c = await s.client({ user: 'mallory' });
        await c.subscribe(ch);
        kicked.push(c);
      }
      expect(s.hub.stats().connections).toBe(base + 3);
      await expect.poll(() => presenceUsers(s, ch)).toEqual(['mallory', 'observer']);

      const res = await api(s, '/api/disconnect', { user: 'mallory', reason });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({});
      for (const c of kicked) {
        const closed = await c.waitForClose();
        expect(closed.code).toBe(4501);
        expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
        expect(closed.reason.length).toBeGreaterThan(0);
        expect(reason.startsWith(closed.reason)).toBe(true);
        const push = c.pushes('disconnect');
        expect(push).toHaveLength(1);
        expect(push[0]).toMatchObject({ code: 4501, reconnect: false });
        expect(reason.startsWith(String(push[0]!.reason))).toBe(true);
      }
      await until(() => s.hub.stats().connections === base, 'the kicked connections to be released');
      await expect.poll(() => presenceUsers(s, ch)).toEqual(['observer']);

      // The per-user cap counts them no more: the same user may open maxConnectionsPerUser again.
      const back: Array<ProtocolClient & { connectResult?: any }> = [];
      for (let i = 0; i < 3; i++) back.push(await s.client({ user: 'mallory' }));
      for (const c of back) expect(c.connectResult.user).toBe('mallory');
      const fourth = await s.client({ user: 'mallory', connect: false });
      expect(await fourth.errorCode('connect', { token: await s.token('mallory') })).toBe(106);
      expect((await fourth.waitForClose()).code).toBe(4007);
      expect(observer.isOpen).toBe(true);
    });
  }
});

describe('a request target that is not a URL', () => {
  it('(b) `//a:b/x` over a raw socket gets 400, and the server keeps serving HTTP and WebSocket', async () => {
    const s = await createTestServer();
    const text = await rawHttp(s.port, 'GET //a:b/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(text).toContain('"code":107');
    // Also on a kept-alive connection, followed by a valid request on the same socket.
    const both = await rawHttp(
      s.port,
      'GET //a:b/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
    );
    expect(both).toMatch(/^HTTP\/1\.1 400 /);

    const health = await fetch(`${s.httpUrl}/healthz`);
    expect(health.status).toBe(200);
    const c = await s.client();
    await c.subscribe('chat:after-bad-target');
    await s.hub.publish('chat:after-bad-target', { ok: true });
    const [pub] = await c.waitForPushes(1, (m) => m.push === 'pub');
    expect(pub!.data).toEqual({ ok: true });
  });
});

describe('binary WebSocket frames', () => {
  it('(c) a binary frame holding {"id":7,"method":"ping"} gets an error reply with id 7 and code 107', async () => {
    const s = await createTestServer();
    const c = await s.client();
    const reply = c.expectReply(7);
    c.sendRaw(Buffer.from('{"id":7,"method":"ping"}'), { binary: true });
    const r = await reply;
    expect(r.result).toBeUndefined();
    expect(r.error?.code).toBe(107);
    // The connection goes on.
    expect(await c.call('ping')).toEqual({});
    expect(c.isOpen).toBe(true);
  });
});

describe('oversized server-side data', () => {
  it('(d) hub.publish and hub.notify reject data over limits.maxMessageBytes with 107; /api/publish answers 400', async () => {
    const s = await createTestServer();
    const max = s.hub.options.limits.maxMessageBytes;
    const tooBig = 'x'.repeat(max); // JSON adds two quotes
    const atLimit = 'x'.repeat(max - 2);

    const pub = await s.hub.publish('chat:big', atLimit).then(
      (v) => v,
      (e: unknown) => e,
    );
    expect(pub).toMatchObject({ offset: 1 });

    for (const attempt of [() => s.hub.publish('chat:big', tooBig), () => s.hub.notify('alice', tooBig)]) {
      const err = await attempt().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(HubError);
      expect((err as HubError).code).toBe(107);
    }
    // Nothing was stored by the refused calls.
    const c = await s.client();
    const hist = await c.call('history', { channel: 'chat:big', limit: 10 });
    expect(hist.position.offset).toBe(1);

    const res = await api(s, '/api/publish', { channel: 'chat:big', data: tooBig });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: number } }).error.code).toBe(107);
    const notify = await api(s, '/api/notify', { user: 'alice', data: tooBig });
    expect(notify.status).toBe(400);
  });
});
