/**
 * Protocol v2 (`switchboard.v2.json`, `switchboard.v2.msgpack`): negotiated by subprotocol,
 * compact publications (`p`/`o`/`e`/`d`/`u`/`c`/`k`) in pushes, subscribe recovery and history
 * replies, everything else as v1; the namespace option `publicationInfo` decides what the
 * publisher info shows, in both versions. v1 and no subprotocol keep v1's form.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { fromV2 } from '../src/client/publication-v2.js';
import { resolveOptions } from '../src/config/options.js';
import { encodePublicationPush } from '../src/protocol/pushes.js';
import { encodePublicationPushV2, encodeReplyWithPublicationsV2, withVisibleInfo } from '../src/protocol/pushes-v2.js';
import { closeAllServers, createTestServer, type TestServer } from './support/harness.js';
import { MsgpackClient } from './support/msgpack-client.js';
import type { ProtocolClient, ServerMessage } from './support/protocol-client.js';

afterEach(closeAllServers);

const V2 = 'switchboard.v2.json';

async function v2Client(s: TestServer, user: string): Promise<ProtocolClient & { connectResult?: any }> {
  return s.client({ user, protocols: V2 });
}

/** The line exactly as the server wrote it (it writes no whitespace, so this round-trips). */
const line = (m: ServerMessage): string => JSON.stringify(m);
const isPub = (channel: string, offset: number) => (m: ServerMessage) => m.p === channel && m.o === offset;

describe('protocol v2 over JSON', () => {
  it('is chosen by subprotocol in the client order; none or v1 keep v1', async () => {
    const s = await createTestServer();
    const v2 = await s.open({ protocols: V2 });
    expect(v2.ws.protocol).toBe(V2);
    const both = await s.open({ protocols: ['nope', V2, 'switchboard.v1.json'] });
    expect(both.ws.protocol).toBe(V2);
    const v1first = await s.open({ protocols: ['switchboard.v1.json', V2] });
    expect(v1first.ws.protocol).toBe('switchboard.v1.json');
    const none = await s.open();
    expect(none.ws.protocol).toBe('');
    const refused = await s.open({ protocols: 'switchboard.v3.json' }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 400 });
    expect((refused as { body: string }).body).toContain('switchboard.v2.json');
  });

  it('pushes compact publications (epoch with the first of a stream) while v1 clients get v1 of the same broadcast', async () => {
    const s = await createTestServer({ namespaces: { chat: { clientPublish: 'any' } } } as never);
    const sub = await v2Client(s, 'bob');
    const old = await s.client({ user: 'carol' });
    const pubr = await v2Client(s, 'alice');
    const aliceId = pubr.connectResult.client as string;
    expect(pubr.connectResult.version).toBe(2);
    expect((await s.client({ user: 'dan' })).connectResult.version).toBe(1);
    const ch = 'chat:v2-push';
    expect((await sub.subscribe(ch)).position.offset).toBe(0);
    await old.subscribe(ch);

    const first = await pubr.publish(ch, { t: 1 });
    const second = await pubr.publish(ch, 'two');
    const m1 = await sub.waitFor(isPub(ch, 1));
    const m2 = await sub.waitFor(isPub(ch, 2));
    expect(line(m1)).toBe(
      `{"p":"chat:v2-push","o":1,"e":${JSON.stringify(first.epoch)},"d":{"t":1},"u":"alice","c":${JSON.stringify(aliceId)}}`,
    );
    expect(line(m2)).toBe(`{"p":"chat:v2-push","o":2,"d":"two","u":"alice","c":${JSON.stringify(aliceId)}}`);
    expect(second.epoch).toBe(first.epoch);
    // The v1 subscriber of the same broadcast: v1's envelope, unchanged.
    const o1 = await old.waitFor((m) => m.push === 'pub' && m.offset === 1);
    expect(line(o1)).toBe(
      `{"push":"pub","channel":"chat:v2-push","offset":1,"epoch":${JSON.stringify(first.epoch)},"data":{"t":1},"info":{"user":"alice","client":${JSON.stringify(aliceId)}}}`,
    );
    // A publication without a publisher (HTTP API, hub.publish) has no u/c.
    await s.hub.publish(ch, { server: true });
    expect(line(await sub.waitFor(isPub(ch, 3)))).toBe('{"p":"chat:v2-push","o":3,"d":{"server":true}}');
    // Other messages are v1's: replies, errors, pushes other than publications.
    expect(await sub.errorCode('subscribe', { channel: 'nowhere:x' })).toBe(102);
    expect(sub.messages.some((m) => m.push === 'pub')).toBe(false);
  });

  it('recovers in v2: compact publications in the subscribe reply and history; paged recovery pushes are compact', async () => {
    const s = await createTestServer({
      namespaces: { chat: { clientPublish: 'any' } },
      limits: { maxQueueBytes: 64 * 1024, maxMessageBytes: 16 * 1024 },
    } as never);
    const ch = 'chat:v2-recover';
    const c = await v2Client(s, 'bob');
    const first = await c.publish(ch, { n: 0 });
    const bobId = c.connectResult.client as string;
    await c.subscribe(ch);
    await c.call('unsubscribe', { channel: ch });
    for (let i = 1; i <= 3; i++) await s.hub.publish(ch, { n: i });
    const small = await c.subscribe(ch, first);
    expect(small.recovered).toBe(true);
    expect(JSON.stringify(small.publications)).toBe('[{"o":2,"d":{"n":1}},{"o":3,"d":{"n":2}},{"o":4,"d":{"n":3}}]');

    const hist = await c.call('history', { channel: ch, since: { offset: 0, epoch: first.epoch } });
    expect(hist.position).toEqual({ offset: 4, epoch: first.epoch });
    expect(JSON.stringify(hist.publications[0])).toBe(`{"o":1,"d":{"n":0},"u":"bob","c":${JSON.stringify(bobId)}}`);
    expect(hist.publications.map((p: { o: number }) => p.o)).toEqual([1, 2, 3, 4]);

    // A recovery larger than one page (a quarter of maxQueueBytes): the rest come as v2 pushes.
    await c.call('unsubscribe', { channel: ch });
    const big = 'x'.repeat(8_000);
    for (let i = 5; i <= 14; i++) await s.hub.publish(ch, { n: i, big });
    const paged = await c.subscribe(ch, { offset: 4, epoch: first.epoch });
    expect(paged.recovered).toBe(true);
    const inReply = (paged.publications as Array<{ o: number }>).map((p) => p.o);
    expect(inReply.length).toBeGreaterThan(0);
    expect(inReply.length).toBeLessThan(10);
    const sentinel = await s.hub.publish(ch, { sentinel: true });
    await c.waitFor(isPub(ch, sentinel.offset));
    const pushed = c.messages.filter((m) => m.p === ch).map((m) => m.o as number);
    expect([...inReply, ...pushed]).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
  });

  it('publicationInfo decides what subscribers see of the publisher, in v2 and in v1', async () => {
    const s = await createTestServer({
      namespaces: {
        users: { publicationInfo: 'user', clientPublish: 'any' },
        quiet: { publicationInfo: 'none', clientPublish: 'any' },
        latest: { delivery: 'latest', publicationInfo: 'user', clientPublish: 'any' },
      },
    } as never);
    const v2 = await v2Client(s, 'bob');
    const v1 = await s.client({ user: 'carol' });
    const pubr = await s.client({ user: 'alice' });
    for (const ch of ['users:a', 'quiet:a', 'latest:a']) {
      await v2.subscribe(ch);
      await v1.subscribe(ch);
    }
    await pubr.publish('users:a', 1);
    await pubr.publish('quiet:a', 2);
    await pubr.call('publish', { channel: 'latest:a', data: 3, key: 'k1' });

    const u2 = await v2.waitFor((m) => m.p === 'users:a');
    expect([u2.u, u2.c]).toEqual(['alice', undefined]);
    const q2 = await v2.waitFor((m) => m.p === 'quiet:a');
    expect(Object.keys(q2)).toEqual(['p', 'o', 'e', 'd']);
    const l2 = await v2.waitFor((m) => m.p === 'latest:a');
    expect([l2.u, l2.c, l2.k]).toEqual(['alice', undefined, 'k1']);

    expect((await v1.waitFor((m) => m.channel === 'users:a' && m.push === 'pub')).info).toEqual({ user: 'alice' });
    expect((await v1.waitFor((m) => m.channel === 'quiet:a' && m.push === 'pub')).info).toBeUndefined();
    expect((await v1.waitFor((m) => m.channel === 'latest:a' && m.push === 'pub')).info).toEqual({ user: 'alice', key: 'k1' });

    // Replies too: history and recovery show what the namespace shows.
    const h1 = await v1.call('history', { channel: 'quiet:a', since: { offset: 0, epoch: q2.e } });
    expect(h1.publications).toEqual([{ offset: 1, data: 2 }]);
    const h2 = await v2.call('history', { channel: 'users:a', since: { offset: 0, epoch: u2.e } });
    expect(h2.publications).toEqual([{ o: 1, d: 1, u: 'alice' }]);
  });

  it("pushes other than publications are v1's", async () => {
    const s = await createTestServer({ namespaces: { room: { presence: true, joinLeave: true, typing: true } } } as never);
    const v2 = await v2Client(s, 'ann');
    await v2.subscribe('room:a');
    const bob = await s.client({ user: 'bob' });
    const bobId = bob.connectResult.client as string;
    await bob.subscribe('room:a');
    await bob.call('typing', { channel: 'room:a', typing: true });
    const join = await v2.waitFor((m) => m.push === 'join');
    expect(line(join)).toBe(`{"push":"join","channel":"room:a","info":{"user":"bob","client":${JSON.stringify(bobId)}}}`);
    const typing = await v2.waitFor((m) => m.push === 'typing');
    expect(line(typing)).toBe('{"push":"typing","channel":"room:a","user":"bob","typing":true}');
  });

  it('client ids are short and unique', async () => {
    const s = await createTestServer();
    const ids = await Promise.all([1, 2, 3].map(async (i) => (await s.client({ user: `u${i}` })).connectResult.client as string));
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{8}[0-9a-z]+$/);
    // One process prefix: the rest is a counter.
    expect(new Set(ids.map((id) => id.slice(0, 8))).size).toBe(1);
  });
});

describe('protocol v2 over MessagePack', () => {
  it('the same compact publication as one MessagePack map, binary data as bytes', async () => {
    const s = await createTestServer();
    const c = await MsgpackClient.open(s.url, ['switchboard.v2.msgpack', 'switchboard.v1.msgpack']);
    expect(c.protocol).toBe('switchboard.v2.msgpack');
    const me = await c.call('connect', { token: await s.token('alice') });
    await c.call('subscribe', { channel: 'chat:mp2' });
    const bytes = new Uint8Array([1, 2, 3, 250]);
    await c.call('publish', { channel: 'chat:mp2', data: { blob: bytes } });
    const got = await c.waitFor((m) => m.p === 'chat:mp2' && m.o === 1);
    expect(Object.keys(got)).toEqual(['p', 'o', 'e', 'd', 'u', 'c']);
    expect(Buffer.from(got.d.blob as Uint8Array).equals(Buffer.from(bytes))).toBe(true);
    expect([got.u, got.c]).toEqual(['alice', me.client]);
    const hist = await c.call('history', { channel: 'chat:mp2', since: { offset: 0, epoch: got.e } });
    expect(Object.keys(hist.publications[0])).toEqual(['o', 'd', 'u', 'c']);
  });
});

describe('publicationInfo option', () => {
  it('is validated with the field named, including its conflict with delivery "latest"', () => {
    expect(() => resolveOptions({ auth: { secret: 'x'.repeat(32) }, namespaces: { a: { publicationInfo: 'some' } } } as never)).toThrow(
      /namespaces\.a\.publicationInfo/,
    );
    expect(() =>
      resolveOptions({ auth: { secret: 'x'.repeat(32) }, namespaces: { a: { delivery: 'latest', publicationInfo: 'none' } } } as never),
    ).toThrow(/namespaces\.a\.publicationInfo.*conflation key/);
    expect(resolveOptions({ auth: { secret: 'x'.repeat(32) } } as never).defaultNamespace.publicationInfo).toBe('full');
  });
});

describe('v2 encoders against the SDK decoder', () => {
  it('a v2 push or reply, decoded by the SDK, is the v1 message of the same publication (fast-check)', () => {
    const json = fc.jsonValue().map((v) => JSON.stringify(v));
    const info = fc.option(fc.record({ user: fc.string(), client: fc.string(), key: fc.option(fc.string(), { nil: undefined }) }), {
      nil: undefined,
    });
    fc.assert(
      fc.property(
        fc.string(),
        fc.nat(),
        json,
        info,
        fc.option(fc.string(), { nil: undefined }),
        fc.constantFrom('full' as const, 'user' as const, 'none' as const),
        (channel, offset, data, who, epoch, mode) => {
          const i = who && who.key === undefined ? { user: who.user, client: who.client } : who;
          const pub = i ? { offset, data, info: i } : { offset, data };
          const v1 = JSON.parse(encodePublicationPush(channel, withVisibleInfo(pub, mode), epoch));
          expect(fromV2(JSON.parse(encodePublicationPushV2(channel, pub, epoch, mode)))).toEqual(v1);
          const reply = fromV2(JSON.parse(encodeReplyWithPublicationsV2(7, { position: { offset, epoch: '' } }, [pub], mode)));
          const { push: _p, channel: _c, epoch: _e, ...item } = v1;
          expect(reply).toEqual({ id: 7, result: { position: { offset, epoch: '' }, publications: [item] } });
        },
      ),
      { numRuns: 300 },
    );
  });
});
