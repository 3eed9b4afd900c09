/**
 * The MessagePack codec (`switchboard.v1.msgpack`): a raw client encoding and decoding with
 * @msgpack/msgpack (a second library; the server uses msgpackr) gets binary frames and every
 * command works as over JSON; binary payloads travel as bytes (and as `{"$binary"}` to JSON
 * clients); batches are concatenated values; JSON stays the default; an unknown subprotocol is
 * refused with 400 / 125; malformed MessagePack gets 107 and the server goes on (fast-check).
 */
import fc from 'fast-check';
import { encode } from '@msgpack/msgpack';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer } from './support/harness.js';
import { jsonToMsgpack } from '../src/codec/msgpack.js';
import { MsgpackClient } from './support/msgpack-client.js';
import { HandshakeError, ProtocolClient } from './support/protocol-client.js';

afterEach(closeAllServers);

async function msgpackClient(url: string, token: string): Promise<MsgpackClient> {
  const c = await MsgpackClient.open(url);
  await c.call('connect', { token });
  return c;
}

describe('MessagePack codec', () => {
  it('commands, replies and pushes work as over JSON, in binary frames decoded by @msgpack/msgpack', async () => {
    const s = await createTestServer({ namespaces: { chat: { presence: true, typing: true } }} as never);
    s.hub.rpc('echo', (_ctx, data) => data);
    const a = await MsgpackClient.open(s.url);
    expect(a.protocol).toBe('switchboard.v1.msgpack');
    const connected = await a.call('connect', { token: await s.token('alice') });
    expect(connected.user).toBe('alice');
    const json = await s.client({ user: 'bob' });
    await json.subscribe('chat:room');

    const sub = await a.call('subscribe', { channel: 'chat:room' });
    expect(sub.position.offset).toBe(0);
    const bytes = new Uint8Array(1024).map((_, i) => i % 251);
    const p1 = await a.call('publish', { channel: 'chat:room', data: { text: 'hi', n: 1.5, list: [1, null, true] } });
    const p2 = await a.call('publish', { channel: 'chat:room', data: { blob: bytes } });
    expect([p1.offset, p2.offset]).toEqual([1, 2]);
    const got = await a.waitFor((m) => m.push === 'pub' && m.offset === 2);
    expect(got.channel).toBe('chat:room');
    expect(got.data.blob).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(got.data.blob as Uint8Array).equals(Buffer.from(bytes))).toBe(true);
    expect(got.info.user).toBe('alice');
    expect(a.messages.find((m) => m.push === 'pub' && m.offset === 1)!.data).toEqual({ text: 'hi', n: 1.5, list: [1, null, true] });

    // A JSON subscriber sees the binary value as {"$binary": base64}.
    const j = await json.waitFor((m) => m.push === 'pub' && m.offset === 2);
    expect(j.data).toEqual({ blob: { $binary: Buffer.from(bytes).toString('base64') } });
    // A JSON publisher's {"$binary"} reaches the MessagePack client as bytes.
    await json.request('publish', { channel: 'chat:room', data: { $binary: Buffer.from('abc').toString('base64') } });
    const fromJson = await a.waitFor((m) => m.push === 'pub' && m.offset === 3);
    expect(Buffer.from(fromJson.data as Uint8Array).toString()).toBe('abc');

    const history = await a.call('history', { channel: 'chat:room', since: { offset: 0, epoch: sub.position.epoch } });
    expect(history.publications.map((p: { offset: number }) => p.offset)).toEqual([1, 2, 3]);
    expect(history.publications[1].data.blob).toBeInstanceOf(Uint8Array);
    const presence = await a.call('presence', { channel: 'chat:room' });
    expect(presence).toEqual((await json.request('presence', { channel: 'chat:room' })).result);
    expect(Object.keys(presence.clients)).toHaveLength(2);
    expect(await a.call('ping')).toEqual({});
    expect(await a.call('rpc', { method: 'echo', data: { x: [1, 2] } })).toEqual({ data: { x: [1, 2] } });
    await a.call('typing', { channel: 'chat:room', typing: true });
    await json.request('typing', { channel: 'chat:room', typing: true });
    await a.waitFor((m) => m.push === 'typing' && m.user === 'bob');

    // Errors carry the same codes.
    const bad = await a.request('nope');
    expect(bad.error.code).toBe(104);
    const unknown = await a.request('subscribe', { channel: 'nowhere:x' });
    expect(unknown.error.code).toBe(102);

    // Several messages in one frame: concatenated values, in both directions.
    const ids = [a.id(), a.id(), a.id()];
    a.send(...ids.map((id) => ({ id, method: 'ping' })));
    for (const id of ids) await a.waitFor((m) => m.id === id);
    expect(a.frames.every((f) => f.binary)).toBe(true);
    expect(a.frames.some((f) => f.values > 1)).toBe(true);

    await a.call('unsubscribe', { channel: 'chat:room' });
    // A text frame on a MessagePack connection is refused (107), and the connection goes on.
    a.ws.send('{"id":99,"method":"ping"}');
    await a.waitFor((m) => m.error?.code === 107 && m.id === undefined);
    expect(await a.call('ping')).toEqual({});
  });

  it('a publication to JSON and MessagePack subscribers: each codec encodes it once, JSON bytes unchanged', async () => {
    const s = await createTestServer();
    const token = await s.token('alice');
    const m1 = await msgpackClient(s.url, token);
    const m2 = await msgpackClient(s.url, token);
    const j1 = await s.client();
    const j2 = await s.client();
    for (const c of [m1, m2]) await c.call('subscribe', { channel: 'chat:x' });
    for (const c of [j1, j2]) await c.subscribe('chat:x');
    const raw: Buffer[] = [];
    j1.ws.on('message', (d: Buffer) => raw.push(d));
    await s.hub.publish('chat:x', { a: 1, s: 'é' });
    await j1.waitFor((m) => m.push === 'pub' && m.offset === 1);
    // The JSON frame is exactly what protocol v1 always sent.
    expect(raw.map((d) => d.toString()).join('\n')).toContain('{"push":"pub","channel":"chat:x","offset":1,');
    expect(raw.some((d) => d.toString().includes('"data":{"a":1,"s":"é"}}'))).toBe(true);
    const [x, y] = await Promise.all([m1, m2].map((c) => c.waitFor((m) => m.push === 'pub' && m.offset === 1)));
    expect(x).toEqual(y);
    expect(x!.data).toEqual({ a: 1, s: 'é' });
    // The transcoding is memoized per shared JSON frame: every MessagePack receiver gets the same bytes.
    const frame = Buffer.from('{"push":"pub","channel":"c","offset":1,"data":{"$binary":"AAE="}}');
    const once = jsonToMsgpack(frame);
    expect(jsonToMsgpack(frame)).toBe(once);
    expect(jsonToMsgpack(Buffer.from(frame))).not.toBe(once);
  });

  it('no subprotocol and switchboard.v1.json speak JSON; an unknown one is refused with 400 and code 125', async () => {
    const s = await createTestServer();
    const plain = await s.client();
    expect(plain.ws.protocol).toBe('');
    const viaJson = await MsgpackClient.open(s.url, 'switchboard.v1.json');
    expect(viaJson.protocol).toBe('switchboard.v1.json');
    viaJson.ws.send(JSON.stringify({ id: 1, method: 'connect', params: { token: await s.token('a') } }));
    const text = await new Promise<string>((resolve) => viaJson.ws.once('message', (d: Buffer, bin: boolean) => resolve(bin ? 'binary' : d.toString())));
    expect(JSON.parse(text).result.user).toBe('a');
    viaJson.close();
    // The first one the server speaks, in the client's order, wins.
    const both = await MsgpackClient.open(s.url, ['chat', 'switchboard.v1.msgpack', 'switchboard.v1.json']);
    expect(both.protocol).toBe('switchboard.v1.msgpack');
    both.close();

    const refused = await ProtocolClient.open(s.url, { headers: { 'Sec-WebSocket-Protocol': 'mqtt, switchboard.v2' } }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HandshakeError);
    expect((refused as HandshakeError).status).toBe(400);
    const body = JSON.parse((refused as HandshakeError & { body: string }).body);
    expect(body.code).toBe(125);
    expect(body.error).toMatch(/switchboard\.v1\.json or switchboard\.v1\.msgpack/);
    // The server goes on.
    expect((await plain.request('ping')).result).toEqual({});
  });

  it('fuzz: malformed MessagePack gets 107 (no id) or a reply per command, never a crash', async () => {
    const s = await createTestServer({ limits: { maxViolations: 1_000_000, commandRate: { perSecond: 100_000, burst: 100_000 } } } as never);
    const token = await s.token('fuzz');
    const c = await msgpackClient(s.url, token);
    const watcher = await msgpackClient(s.url, token);
    await watcher.call('subscribe', { channel: 'chat:watch' });
    const command = fc.oneof(
      fc.record({ id: fc.integer({ min: 1, max: 1e6 }), method: fc.constantFrom('ping', 'publish', 'subscribe', 'history', 'nope'), params: fc.anything() }),
      fc.anything(),
    );
    const frameArb = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 200 }),
      fc.array(command, { minLength: 1, maxLength: 4 }).map((vs) => Buffer.concat(vs.map((v) => encodeLoose(v)))),
      fc.integer({ min: 1, max: 60_000 }).map((n) => Buffer.alloc(n, 0x91)),
      fc.constantFrom(Buffer.from([0xc1]), Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff]), Buffer.from([0xdb, 0xff, 0xff, 0xff, 0x7f])),
    );
    let sentinel = 1_000_001;
    await fc.assert(
      fc.asyncProperty(frameArb, async (bytes) => {
        c.ws.send(bytes, { binary: true });
        const id = sentinel++;
        c.send({ id, method: 'ping' });
        const reply = await c.waitFor((m) => m.id === id);
        expect(reply.result).toEqual({});
        for (const m of c.messages) if (m.error) expect([102, 103, 104, 105, 107, 108, 110, 111, 112]).toContain(m.error.code);
        c.messages.length = 0;
      }),
      { numRuns: 300 },
    );
    expect(c.closeInfo).toBeUndefined();
    await s.hub.publish('chat:watch', { after: true });
    await watcher.waitFor((m) => m.push === 'pub' && m.data.after === true);
  });
});

function encodeLoose(v: unknown): Uint8Array {
  try {
    return encode(v);
  } catch {
    return encode(null);
  }
}
