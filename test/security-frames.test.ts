import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer, type TestServer } from './support/harness.js';
import type { ProtocolClient } from './support/protocol-client.js';

afterEach(closeAllServers);

/** A well-behaved subscriber that must be unaffected by whatever the attacker does. */
async function bystander(s: TestServer): Promise<ProtocolClient> {
  const c = await s.client({ user: 'bystander' });
  await c.subscribe('chat:calm');
  return c;
}

async function stillServed(s: TestServer, c: ProtocolClient): Promise<void> {
  expect(c.closeInfo).toBeUndefined();
  const marker = `m-${Math.random()}`;
  await s.hub.publish('chat:calm', marker);
  await c.waitForPushes(1, (m) => m.push === 'pub' && m.data === marker);
  expect(await c.call('ping', {})).toEqual({});
  // New connections are still accepted and served.
  const fresh = await s.client({ user: 'fresh' });
  expect(await fresh.call('ping', {})).toEqual({});
}

describe('hostile frames (BRIEF §5.5)', () => {
  it('an oversized message closes with 1009; others are unaffected', async () => {
    const s = await createTestServer({ limits: { maxMessageBytes: 4096 } });
    const calm = await bystander(s);
    const bad = await s.client();
    bad.sendRaw(JSON.stringify({ id: 9, method: 'publish', params: { channel: 'chat:calm', data: 'x'.repeat(5000) } }));
    expect((await bad.waitForClose()).code).toBe(1009);
    await stillServed(s, calm);
    expect(calm.pubs('chat:calm').some((p) => typeof p.data === 'string' && p.data.length >= 5000)).toBe(false);
  });

  it('an oversized message before connect closes with 1009 too', async () => {
    const s = await createTestServer({ limits: { maxMessageBytes: 4096 } });
    const bad = await s.client({ connect: false });
    bad.sendRaw('x'.repeat(10_000));
    expect((await bad.waitForClose()).code).toBe(1009);
  });

  it('invalid UTF-8 in a text frame closes with 1007; others are unaffected', async () => {
    const s = await createTestServer();
    const calm = await bystander(s);
    const bad = await s.client();
    bad.sendRaw(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])); // {"\xff\xfe"}
    expect((await bad.waitForClose()).code).toBe(1007);
    const overlong = await s.client();
    overlong.sendRaw(Buffer.from([0xc0, 0xaf])); // overlong encoding of '/'
    expect((await overlong.waitForClose()).code).toBe(1007);
    const surrogate = await s.client();
    surrogate.sendRaw(Buffer.from([0xed, 0xa0, 0x80])); // UTF-16 surrogate half
    expect((await surrogate.waitForClose()).code).toBe(1007);
    await stillServed(s, calm);
  });

  it('a fragment flood past the message limit closes with 1009', async () => {
    const s = await createTestServer({ limits: { maxMessageBytes: 8192 } });
    const calm = await bystander(s);
    const bad = await s.client();
    const chunk = Buffer.alloc(100, 0x20);
    for (let i = 0; i < 2000 && bad.isOpen; i++) bad.sendRaw(chunk, { fin: false });
    expect((await bad.waitForClose()).code).toBe(1009);
    await stillServed(s, calm);
  });

  it('a message split into many small fragments under the limit still works', async () => {
    const s = await createTestServer();
    const c = await s.client();
    const line = Buffer.from(JSON.stringify({ id: 77, method: 'ping', params: {} }));
    const reply = c.expectReply(77);
    for (let i = 0; i < line.length; i++) c.sendRaw(line.subarray(i, i + 1), { fin: i === line.length - 1 });
    expect((await reply).result).toEqual({});
  });

  it('malformed JSON gets error 107 without an id and the connection keeps working', async () => {
    const s = await createTestServer();
    const c = await s.client();
    c.sendRaw('{"id":1,"method":');
    const err = await c.waitFor((m) => m.error !== undefined && m.id === undefined);
    expect(err.error!.code).toBe(107);
    expect(await c.call('ping', {})).toEqual({});
  });

  it('bad envelopes get 107, naming the problem', async () => {
    const s = await createTestServer();
    const c = await s.client();
    const r1 = await c.requestRaw(5, '{"id":5,"method":"ping","params":{},"extra":true}');
    expect(r1.error?.code).toBe(107);
    expect(r1.error?.message).toContain('extra');
    const r2 = await c.requestRaw(6, '{"id":6,"method":"subscribe","params":{"channel":42}}');
    expect(r2.error?.code).toBe(107);
    expect(r2.error?.message).toContain('channel');
    const r3 = await c.requestRaw(7, '{"id":7,"method":"subscribe","params":{"channel":"chat:a","since":{"offset":"1","epoch":"x"}}}');
    expect(r3.error?.code).toBe(107);
    for (const line of [
      '[1,2,3]',
      '"string"',
      'null',
      '{"id":-1,"method":"ping"}',
      '{"id":1.5,"method":"ping"}',
      '{"method":"ping"}',
      '{"id":8}',
    ]) {
      const before = c.orphanErrors().length + c.messages.filter((m) => m.id === 8 && m.error).length;
      c.sendRaw(line);
      await c.waitFor(
        () => c.orphanErrors().length + c.messages.filter((m) => m.id === 8 && m.error).length > before,
        5_000,
        `an error for ${line}`,
      );
    }
    expect(c.orphanErrors().every((m) => m.error!.code === 107)).toBe(true);
    expect(await c.call('ping', {})).toEqual({});
  });

  it('unknown methods get 104, including prototype names', async () => {
    const s = await createTestServer();
    const c = await s.client();
    for (const method of ['nope', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'PING']) {
      expect(await c.errorCode(method, {})).toBe(104);
    }
    expect(await c.errorCode('rpc', { method: 'not-registered' })).toBe(104);
    expect(await c.call('ping', {})).toEqual({});
  });

  it('commands before connect get 110; a second connect gets 113', async () => {
    const s = await createTestServer();
    const c = await s.client({ connect: false });
    expect(await c.errorCode('ping', {})).toBe(110);
    await c.connect(await s.token('alice'));
    expect(await c.errorCode('connect', { token: await s.token('mallory') })).toBe(113);
  });

  it('repeated bad commands close the connection with 4502; others are unaffected', async () => {
    const s = await createTestServer({ limits: { maxViolations: 5 } });
    const calm = await bystander(s);
    const bad = await s.client();
    for (let i = 0; i < 20 && bad.isOpen; i++) bad.sendRaw('this is not json');
    expect((await bad.waitForClose()).code).toBe(4502);
    await stillServed(s, calm);
  });

  it('one frame full of garbage lines closes with 4502 once the violations pile up', async () => {
    const s = await createTestServer({ limits: { maxViolations: 5 } });
    const bad = await s.client();
    bad.sendRaw(Array.from({ length: 1000 }, () => '{oops').join('\n'));
    expect((await bad.waitForClose()).code).toBe(4502);
  });

  it('binary frames are refused with 107', async () => {
    const s = await createTestServer();
    const c = await s.client();
    c.sendRaw(Buffer.from('{"id":1,"method":"ping"}'), { binary: true });
    const err = await c.waitFor((m) => m.error !== undefined);
    expect(err.error!.code).toBe(107);
    expect(await c.call('ping', {})).toEqual({});
  });

  it('deeply nested JSON never crashes the server', async () => {
    const s = await createTestServer({ namespaces: { chat: { clientPublish: 'any' } } });
    const calm = await bystander(s);
    const c = await s.client();
    const depth = 20_000;
    const nested = '['.repeat(depth) + ']'.repeat(depth);
    const line = `{"id":3,"method":"publish","params":{"channel":"chat:deep","data":${nested}}}`;
    const reply = await c.requestRaw(3, line);
    expect(reply.error !== undefined || reply.result !== undefined).toBe(true);
    const depth2 = 10_000; // 60 KB, under the 64 KiB default limit
    const line2 = `{"id":4,"method":"ping","params":${'{"a":'.repeat(depth2)}1${'}'.repeat(depth2)}}`;
    const reply2 = await c.requestRaw(4, line2);
    expect(reply2.error?.code).toBe(107);
    await stillServed(s, calm);
  });

  it('a batched frame of several commands is answered in full', async () => {
    const s = await createTestServer();
    const c = await s.client({ connect: false });
    const token = await s.token('alice');
    const replies = Promise.all([1, 2, 3].map((id) => c.expectReply(id)));
    c.sendRaw(
      [
        JSON.stringify({ id: 1, method: 'connect', params: { token } }),
        JSON.stringify({ id: 2, method: 'subscribe', params: { channel: 'chat:b' } }),
        '',
        JSON.stringify({ id: 3, method: 'ping' }),
      ].join('\n'),
    );
    const got = await replies;
    expect(got.map((r) => r.error)).toEqual([undefined, undefined, undefined]);
    expect(got[0]!.result.user).toBe('alice');
  });
});

describe('a breach in one frame', () => {
  it('gets every error reply before the close', async () => {
    const s = await createTestServer({ limits: { maxViolations: 3 } });
    const c = await s.client();
    c.sendRaw(['nope', '{"x":1}', '[]'].join('\n'));
    const closed = await c.waitForClose();
    expect(closed.code).toBe(4502);
    expect(c.orphanErrors().map((m) => m.error?.code)).toEqual([107, 107, 107]);
  });
});
