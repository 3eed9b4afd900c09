/**
 * The SDK speaks protocol v2 by default (`switchboard.v2.json`, or `switchboard.v2.msgpack`)
 * and v1 with `protocolVersion: 1`: the wire differs (compact publications against v1's
 * envelope), the objects the app gets do not — live, recovered after a reconnect, history, and
 * under `publicationInfo: "user"`. Its v2 decoder also reads v1 (a server that chose v1).
 */
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { signToken } from '../src/auth/token.js';
import { SwitchboardClient, type Publication } from '../src/client/index.js';
import { jsonV2Codec } from '../src/client/wire-codec.js';
import { closeAllServers, createTestServer, TEST_SECRET, until } from './support/harness.js';

const clients: SwitchboardClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await closeAllServers();
});

/** A `ws` WebSocket that records the subprotocol it got and the text of every frame. */
function recordingWebSocket(log: { protocol: string; frames: string[] }) {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols ?? []);
      this.on('open', () => (log.protocol = this.protocol));
      this.on('message', (data: Buffer) => log.frames.push(data.toString('latin1')));
    }
  };
}

async function client(url: string, user: string, extra: Record<string, unknown> = {}) {
  const log = { protocol: '', frames: [] as string[] };
  const c = new SwitchboardClient(url, {
    token: await signToken({ secret: TEST_SECRET, user, ttl: 3600 }),
    backoff: { minMs: 10, maxMs: 50, factor: 2 },
    WebSocket: recordingWebSocket(log) as never,
    ...extra,
  });
  clients.push(c);
  c.connect();
  await c.ready();
  return { c, log };
}

/** Live, recovered and history publications of one channel, as the SDK hands them over. */
async function roundTrip(version: 1 | 2 | undefined, ns = 'chat') {
  const s = await createTestServer({ namespaces: { chat: {}, terse: { publicationInfo: 'user' } } } as never);
  const ch = `${ns}:room`;
  const { c: alice } = await client(s.url, 'alice', version ? { protocolVersion: version } : {});
  const { c: bob, log } = await client(s.url, 'bob', version ? { protocolVersion: version } : {});
  const got: Publication[] = [];
  const subA = alice.subscribe(ch);
  const subB = bob.subscribe(ch, { onPublication: (p) => got.push(p) });
  await Promise.all([subA.ready(), subB.ready()]);
  await subA.publish({ n: 1 });
  await until(() => got.length === 1, 'the live publication');
  bob.disconnect();
  await subA.publish({ n: 2 });
  bob.connect();
  await until(() => got.length === 2, 'the recovered publication');
  const history = await subB.history({ limit: 10 });
  return { got, history: history.publications, log, aliceId: alice.clientId };
}

describe('SDK protocol versions', () => {
  it('speaks v2 by default: compact on the wire, the same Publication objects as v1', async () => {
    const v2 = await roundTrip(undefined);
    expect(v2.log.protocol).toBe('switchboard.v2.json');
    expect(v2.log.frames.some((f) => f.includes('{"p":"chat:room","o":1,'))).toBe(true);
    expect(v2.log.frames.some((f) => f.includes('"push":"pub"'))).toBe(false);
    const info = { user: 'alice', client: v2.aliceId };
    expect(v2.got).toEqual([
      { channel: 'chat:room', offset: 1, data: { n: 1 }, info, recovered: false },
      { channel: 'chat:room', offset: 2, data: { n: 2 }, info, recovered: true },
    ]);
    expect(v2.history).toEqual([
      { offset: 1, data: { n: 1 }, info },
      { offset: 2, data: { n: 2 }, info },
    ]);
  });

  it('protocolVersion: 1 speaks v1 (no subprotocol) and hands over the same objects', async () => {
    const v1 = await roundTrip(1);
    expect(v1.log.protocol).toBe('');
    expect(v1.log.frames.some((f) => f.includes('"push":"pub","channel":"chat:room","offset":1'))).toBe(true);
    expect(v1.log.frames.some((f) => f.includes('"p":"chat:room"'))).toBe(false);
    const info = { user: 'alice', client: v1.aliceId };
    expect(v1.got.map((p) => [p.offset, p.info, p.recovered])).toEqual([
      [1, info, false],
      [2, info, true],
    ]);
    expect(v1.history.map((p) => p.info)).toEqual([info, info]);
  });

  it('publicationInfo "user": info without client, in both versions', async () => {
    for (const version of [1, 2] as const) {
      const r = await roundTrip(version, 'terse');
      expect(r.got.map((p) => p.info)).toEqual([{ user: 'alice' }, { user: 'alice' }]);
      expect(r.history.map((p) => p.info)).toEqual([{ user: 'alice' }, { user: 'alice' }]);
      await closeAllServers();
    }
  });

  it('over MessagePack asks for switchboard.v2.msgpack (v1 with protocolVersion: 1)', async () => {
    const s = await createTestServer();
    const { c, log } = await client(s.url, 'mp', { codec: 'msgpack' });
    expect(log.protocol).toBe('switchboard.v2.msgpack');
    const got: Publication[] = [];
    const sub = c.subscribe('chat:mp', { onPublication: (p) => got.push(p) });
    await sub.ready();
    const bytes = new Uint8Array([9, 8, 7]);
    await sub.publish({ bytes });
    await until(() => got.length === 1, 'the publication');
    expect(got[0]).toMatchObject({ channel: 'chat:mp', offset: 1, info: { user: 'mp', client: c.clientId }, recovered: false });
    expect(Buffer.from((got[0]!.data as { bytes: Uint8Array }).bytes)).toEqual(Buffer.from(bytes));
    const { log: log1 } = await client(s.url, 'mp1', { codec: 'msgpack', protocolVersion: 1 });
    expect(log1.protocol).toBe('switchboard.v1.msgpack');
  });

  it('the v2 decoder reads v1 messages unchanged (a server that chose v1) and refuses a bad protocolVersion', () => {
    const v1 =
      '{"push":"pub","channel":"c","offset":3,"data":1,"info":{"user":"u","client":"x"}}\n{"id":2,"result":{"publications":[{"offset":1,"data":2}]}}';
    const bad: string[] = [];
    expect(jsonV2Codec.decode(v1, (w) => bad.push(w))).toEqual([
      { push: 'pub', channel: 'c', offset: 3, data: 1, info: { user: 'u', client: 'x' } },
      { id: 2, result: { publications: [{ offset: 1, data: 2 }] } },
    ]);
    expect(jsonV2Codec.decode('{"p":"c","o":1,"e":"E","d":[1],"u":"u","k":"k"}', (w) => bad.push(w))).toEqual([
      { push: 'pub', channel: 'c', offset: 1, epoch: 'E', data: [1], info: { user: 'u', key: 'k' } },
    ]);
    expect(bad).toEqual([]);
    expect(() => new SwitchboardClient('ws://127.0.0.1:1/ws', { protocolVersion: 3 as never })).toThrow(/protocolVersion/);
  });
});
