/**
 * Server-side subscriptions from a JWT `subs` claim (the connect proxy's `channels` are covered
 * by backend-server-subs against the Python backend): subscribed at connect with the usual
 * checks, a refused one reported alone, and the claim validated.
 */
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { SwitchboardClient, type Publication } from '../src/client/index.js';
import { closeAllServers, createTestServer, TEST_SECRET } from './support/harness.js';
import { waitFor } from './support/processes.js';

const clients: SwitchboardClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await closeAllServers();
});

function token(user: string, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(user)
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(TEST_SECRET));
}

describe('the JWT subs claim', () => {
  it('subscribes the connection server-side; a channel the token does not grant is refused alone', async () => {
    const server = await createTestServer({ namespaces: { chat: {}, vip: { subscribe: 'claim' } } });
    const client = new SwitchboardClient(server.url, { token: await token('erin', { subs: ['chat:jwt', 'vip:lounge'] }) });
    clients.push(client);
    const got: Publication[] = [];
    const refused: number[] = [];
    client.on('publication', (p) => got.push(p));
    client.on('subscribeError', ({ channel, error }) => refused.push(channel === 'vip:lounge' ? error.code : -1));
    client.connect();
    await client.ready(5_000);
    expect(client.serverSubscriptions.map((s) => s.channel)).toEqual(['chat:jwt']);
    expect(refused).toEqual([103]);
    await server.hub.publish('chat:jwt', { n: 1 });
    await waitFor(() => got.length === 1, 'the publication');
    expect(got[0]).toMatchObject({ channel: 'chat:jwt', offset: 1, data: { n: 1 }, recovered: false });
    expect(client.state).toBe('connected');
  });

  it('a recovery larger than one reply: the connect reply carries the first page and top, the rest follow as pushes after it', async () => {
    const server = await createTestServer({ limits: { maxQueueBytes: 64 * 1024, maxMessageBytes: 16 * 1024 } });
    const jwt = await token('erin', { subs: ['chat:paged'] });
    const first = await server.open();
    const at = (await first.call('connect', { token: jwt })).subs['chat:paged'].position as { offset: number; epoch: string };
    await first.close();
    const text = 'x'.repeat(1000);
    for (let i = 1; i <= 60; i++) await server.hub.publish('chat:paged', { i, text });

    const ws = await server.open();
    const reply = await ws.request('connect', { token: jwt, subs: { 'chat:paged': { since: at } } });
    const opened = reply.result.subs['chat:paged'];
    expect(opened).toMatchObject({ recovered: true, top: { offset: at.offset + 60 } });
    expect(opened.publications.length).toBeGreaterThan(0);
    expect(opened.publications.length).toBeLessThan(60);
    await ws.waitForPubCount('chat:paged', 60 - opened.publications.length);
    await server.hub.publish('chat:paged', { i: 61, text: 'sentinel' });
    await ws.waitForPubCount('chat:paged', 61 - opened.publications.length);
    // Nothing of the channel before the reply that opened it; then every offset once, in order.
    const replyAt = ws.messages.indexOf(reply);
    const pushes = ws.messages.filter((m) => m.push === 'pub' && m.channel === 'chat:paged');
    expect(pushes.every((m) => ws.messages.indexOf(m) > replyAt)).toBe(true);
    const offsets = [...opened.publications, ...pushes].map((p: { offset: number }) => p.offset);
    expect(offsets).toEqual(Array.from({ length: 61 }, (_, k) => at.offset + 1 + k));
  });

  it('a subs claim that is not an array of channel names refuses the token (101)', async () => {
    const server = await createTestServer();
    const ws = await server.open();
    expect(await ws.errorCode('connect', { token: await token('erin', { subs: 'chat:jwt' }) })).toBe(101);
    const again = await server.open();
    expect(await again.errorCode('connect', { token: await token('erin', { subs: [''] }) })).toBe(101);
  });
});
