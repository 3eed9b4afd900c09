/**
 * The SDK with `codec: 'msgpack'`: it asks for `switchboard.v1.msgpack`, and everything works
 * as over JSON (connect, subscribe, publish with Uint8Array data, history); client events
 * (`emit` / `onEvent`) reach the other client and not the sender; a subscribe in a
 * latest-value namespace hands the latest per key flagged `latest`; `emit` returns false while offline.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { signToken } from '../src/auth/token.js';
import { SwitchboardClient, type ClientEvent, type Publication } from '../src/client/index.js';
import { closeAllServers, createTestServer, TEST_SECRET } from './support/harness.js';

const clients: SwitchboardClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await closeAllServers();
});

async function client(url: string, user: string): Promise<SwitchboardClient> {
  const c = new SwitchboardClient(url, {
    token: await signToken({ secret: TEST_SECRET, user, ttl: 3600 }),
    codec: 'msgpack',
    backoff: { minMs: 10, maxMs: 50, factor: 2 },
  });
  clients.push(c);
  c.connect();
  await c.ready();
  return c;
}

function until(check: () => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + 10_000;
    const poll = (): void => {
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

describe('SDK over MessagePack', () => {
  it('publishes bytes, receives them, reads history, exchanges client events; a late joiner gets the latest per key; no emit while offline', async () => {
    const s = await createTestServer({ namespaces: { game: { delivery: 'latest', clientEvents: true } } } as never);
    const a = await client(s.url, 'a');
    const b = await client(s.url, 'b');
    const gotB: Publication[] = [];
    const eventsA: ClientEvent[] = [];
    const eventsB: ClientEvent[] = [];
    const subA = a.subscribe('game:room', { onEvent: (e) => eventsA.push(e) });
    const subB = b.subscribe('game:room', { onPublication: (p) => gotB.push(p), onEvent: (e) => eventsB.push(e) });
    await Promise.all([subA.ready(), subB.ready()]);

    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    await subA.publish({ bytes, n: 1 }, { key: 'a' });
    await until(() => gotB.length === 1, 'the publication');
    expect(Buffer.from((gotB[0]!.data as { bytes: Uint8Array }).bytes)).toEqual(Buffer.from(bytes));
    expect(gotB[0]!.info?.user).toBe('a');
    const history = await subB.history({ limit: 10 });
    expect(history.publications).toHaveLength(1);

    expect(subA.emit({ x: 10, y: 20 }, { key: 'cursor' })).toBe(true);
    await until(() => eventsB.length === 1, 'the event');
    expect(eventsB[0]).toMatchObject({ channel: 'game:room', data: { x: 10, y: 20 }, info: { user: 'a', key: 'cursor' } });
    // b answers; a gets it, and never its own.
    subB.emit('pong');
    await until(() => eventsA.length === 1, 'the answer');
    expect(eventsA.map((e) => e.data)).toEqual(['pong']);

    // A late joiner gets the latest value of each key, flagged.
    await subA.publish({ n: 2 }, { key: 'a' });
    await subA.publish({ n: 1 }, { key: 'b' });
    const c = await client(s.url, 'c');
    const late: Publication[] = [];
    const subC = c.subscribe('game:room', { onPublication: (p) => late.push(p) });
    await subC.ready();
    await until(() => late.length === 2, 'the latest values');
    expect(late.map((p) => [(p.data as { n: number }).n, p.latest])).toEqual([
      [2, true],
      [1, true],
    ]);
    expect(subC.emit('while connected')).toBe(true);
    c.disconnect();
    expect(subC.emit('offline')).toBe(false);
  });
});
