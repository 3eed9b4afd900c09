/**
 * The publish fast path against a real hub and raw protocol clients: publishes sent in one
 * frame are started at once and keep their order (offsets, replies, deliveries), and a command
 * behind them still waits for them; `data` is kept as the JSON text it arrived as (WebSocket
 * and POST /api/publish), seen in the raw history text; lines the fast path declines, hooks
 * that see data as values, and the documented errors all still work.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer, TEST_API_KEY } from './support/harness.js';

const dirs: string[] = [];
afterAll(async () => {
  await closeAllServers();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function rawHistory(httpUrl: string, channel: string): Promise<string> {
  const res = await fetch(`${httpUrl}/api/history?channel=${encodeURIComponent(channel)}`, { headers: { authorization: `apikey ${TEST_API_KEY}` } });
  expect(res.status).toBe(200);
  return res.text();
}

describe('publish fast path', () => {
  it('publishes in one frame keep their order; a command behind them waits for them', async () => {
    for (const dataDir of [null, 'sqlite'] as const) {
      const server = await createTestServer({
        namespaces: { chat: { clientPublish: 'any' } },
        ...(dataDir ? { dataDir: dirs[dirs.push(mkdtempSync(join(tmpdir(), 'sb-fast-'))) - 1]! } : {}),
      });
      const sub = await server.client({ user: 'bob' });
      await sub.subscribe('chat:order');
      const pub = await server.client();
      const lines = Array.from({ length: 40 }, (_, i) => JSON.stringify({ id: 100 + i, method: 'publish', params: { channel: 'chat:order', data: { n: i } } }));
      lines.push(JSON.stringify({ id: 140, method: 'history', params: { channel: 'chat:order' } }));
      const answers = Array.from({ length: 41 }, (_, i) => pub.expectReply(100 + i));
      pub.sendRaw(lines.join('\n'));
      const replies = await Promise.all(answers);
      const history = replies.pop()!;
      expect(replies.map((r) => r.result.offset)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      // The history command was answered after every publish before it was stored.
      expect(history.result.position.offset).toBe(40);
      const replyOrder = pub.messages.filter((m) => typeof m.id === 'number' && m.id >= 100).map((m) => m.id);
      expect(replyOrder).toEqual(Array.from({ length: 41 }, (_, i) => 100 + i));
      await sub.waitForPubCount('chat:order', 40);
      expect(sub.pubs('chat:order').map((m) => m.data.n)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    }
  });

  it('keeps data as the JSON text it arrived as, on the WebSocket and through POST /api/publish', async () => {
    const server = await createTestServer({ namespaces: { chat: { clientPublish: 'any' } } });
    const client = await server.client();
    const reply = await client.requestRaw(7, '{"id":7,"method":"publish","params":{"channel":"chat:raw","data":{"n":1.50,"s":"\\u00e9"}}}');
    expect(reply.result.offset).toBe(1);
    const res = await fetch(`${server.httpUrl}/api/publish`, {
      method: 'POST',
      headers: { authorization: `apikey ${TEST_API_KEY}`, 'content-type': 'application/json' },
      body: '{"channel":"chat:raw","data":[1.0,-0]}',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ offset: 2 });
    // Declined by the fast path (whitespace in data): the full path stores its re-encoded text.
    await client.requestRaw(8, '{"id":8,"method":"publish","params":{"channel":"chat:raw","data":[1, 2]}}');
    const text = await rawHistory(server.httpUrl, 'chat:raw');
    expect(text).toContain('"data":{"n":1.50,"s":"\\u00e9"}');
    expect(text).toContain('"data":[1.0,-0]');
    expect(text).toContain('"data":[1,2]');
  });

  it('a publish hook sees data as a JSON value and may replace it', async () => {
    const seen: unknown[] = [];
    const server = await createTestServer({
      namespaces: { chat: { clientPublish: 'any' } },
      hooks: {
        onPublish: (_ctx, _channel, data) => {
          seen.push(data);
          return { wrapped: data };
        },
      },
    });
    const sub = await server.client({ user: 'bob' });
    await sub.subscribe('chat:hook');
    const client = await server.client();
    await client.publish('chat:hook', { a: [1, 'x'] });
    expect(seen).toEqual([{ a: [1, 'x'] }]);
    await sub.waitForPubCount('chat:hook', 1);
    expect(sub.pubs('chat:hook')[0]!.data).toEqual({ wrapped: { a: [1, 'x'] } });
  });

  it('answers the documented errors on the fast path', async () => {
    const server = await createTestServer({
      namespaces: { chat: { clientPublish: 'any' }, ro: { clientPublish: 'none' }, subs: { clientPublish: 'subscribers' } },
    });
    const client = await server.client();
    expect(await client.errorCode('publish', { channel: 'ro:x', data: 1 })).toBe(103);
    expect(await client.errorCode('publish', { channel: 'subs:x', data: 1 })).toBe(103);
    expect(await client.errorCode('publish', { channel: 'nope:x', data: 1 })).toBe(102);
    expect(await client.errorCode('publish', { channel: 'chat:x', data: 1, key: 'k' })).toBe(107);
    expect(await client.errorCode('publish', { channel: 'chat:x', data: 1, extra: true })).toBe(107);
    // Before connect: 110, as for any command.
    const early = await server.client({ connect: false });
    expect(await early.errorCode('publish', { channel: 'chat:x', data: 1 })).toBe(110);
    // Still serving.
    expect((await client.publish('chat:x', 1)).offset).toBe(1);
  });
});
