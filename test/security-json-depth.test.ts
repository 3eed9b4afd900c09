import { afterEach, describe, expect, it } from 'vitest';
import { jsonDepthExceeds, parseCommandLine } from '../src/protocol/commands.js';
import { closeAllServers, createTestServer, TEST_API_KEY } from './support/harness.js';

afterEach(closeAllServers);

/** `[[[...1...]]]`, `levels` arrays deep. */
const nestedArrays = (levels: number): string => `${'['.repeat(levels)}1${']'.repeat(levels)}`;
/** `{"a":{"a":...1...}}`, `levels` objects deep. */
const nestedObjects = (levels: number): string => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;

describe('deeply nested JSON from clients', () => {
  it('a WebSocket publish with 5,000 levels of data answers 107 naming the depth, and the connection keeps working', async () => {
    const s = await createTestServer();
    const c = await s.client();
    await c.subscribe('chat:deep');
    for (const data of [nestedArrays(5_000), nestedObjects(5_000)]) {
      const id = c.id();
      const reply = await c.requestRaw(id, `{"id":${id},"method":"publish","params":{"channel":"chat:deep","data":${data}}}`);
      expect(reply.error?.code).toBe(107);
      expect(reply.error?.message).toMatch(/depth/);
      expect(reply.error?.message).toMatch(/64/);
    }
    // Nothing was published, and the connection still works.
    expect(await c.publish('chat:deep', { ok: true })).toMatchObject({ offset: 1 });
    await c.waitForPushes(1, (m) => m.push === 'pub');
    expect(c.pubs('chat:deep').map((p) => p.data)).toEqual([{ ok: true }]);
    expect(c.isOpen).toBe(true);
  });

  it('a WebSocket command nested just within the limit still works', async () => {
    const s = await createTestServer({ limits: { maxJsonDepth: 8 } });
    const c = await s.client();
    await c.subscribe('chat:d');
    // The command object and params are two levels; data may add six.
    expect(await c.publish('chat:d', JSON.parse(nestedArrays(6)))).toMatchObject({ offset: 1 });
    expect(await c.errorCode('publish', { channel: 'chat:d', data: JSON.parse(nestedArrays(7)) })).toBe(107);
  });

  it('HTTP POST /api/publish with 5,000 levels of data answers 400 with code 107', async () => {
    const s = await createTestServer();
    for (const data of [nestedArrays(5_000), nestedObjects(5_000)]) {
      const res = await fetch(`${s.httpUrl}/api/publish`, {
        method: 'POST',
        headers: { Authorization: `apikey ${TEST_API_KEY}`, 'Content-Type': 'application/json' },
        body: `{"channel":"chat:deep","data":${data}}`,
      });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { code: number; message: string } };
      expect(body.error.code).toBe(107);
      expect(body.error.message).toMatch(/depth/);
    }
    // The server is fine and nothing was published.
    const ok = await fetch(`${s.httpUrl}/api/publish`, {
      method: 'POST',
      headers: { Authorization: `apikey ${TEST_API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ channel: 'chat:deep', data: [[[1]]] }),
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ offset: 1 });
  });

  it('rejects a bad limits.maxJsonDepth', async () => {
    await expect(createTestServer({ limits: { maxJsonDepth: 0 } })).rejects.toThrow(/limits\.maxJsonDepth/);
    await expect(createTestServer({ limits: { maxJsonDepth: 1.5 } })).rejects.toThrow(/limits\.maxJsonDepth/);
  });
});

describe('parseCommandLine', () => {
  it('parses a line within the limit, and refuses a deeper one with 107 and its top-level id', () => {
    expect(parseCommandLine('{"id":3,"method":"ping","params":{}}', 2)).toEqual({ ok: true, value: { id: 3, method: 'ping', params: {} } });
    const deep = parseCommandLine(`{"method":"publish","params":{"channel":"c","data":${nestedArrays(100)}},"id":7}`, 64);
    expect(deep).toMatchObject({ ok: false, id: 7, error: { code: 107 } });
    expect(!deep.ok && deep.error.message).toMatch(/depth over 64/);
    // Only a top-level "id" key with a positive integer counts.
    const noId = (line: string): unknown => {
      const r = parseCommandLine(line, 3);
      return r.ok ? 'parsed' : r.id;
    };
    expect(noId(`{"params":{"id":5,"x":[[[[1]]]]}}`)).toBeUndefined();
    expect(noId(`{"params":"\\\\",  "id" : 9 ,"x":[[[[1]]]]}`)).toBe(9);
    expect(noId(`{"x":"id","y":[[[[1]]]],"id":-1}`)).toBeUndefined();
    expect(noId(`{"x":"id","y":[[[[1]]]],"id":1.5}`)).toBeUndefined();
    expect(noId(`{"x":"id","y":[[[[1]]]],"id":"4"}`)).toBeUndefined();
    expect(noId(`[{"id":4},[[[[1]]]]]`)).toBeUndefined();
    expect(parseCommandLine('{"id":1,', 64)).toMatchObject({ ok: false, error: { code: 107, message: 'malformed JSON' } });
  });
});

describe('jsonDepthExceeds', () => {
  it('counts [ and { outside strings only', () => {
    expect(jsonDepthExceeds('{}', 1)).toBe(false);
    expect(jsonDepthExceeds('{"a":[]}', 1)).toBe(true);
    expect(jsonDepthExceeds('{"a":[]}', 2)).toBe(false);
    expect(jsonDepthExceeds('[[],[],[[]]]', 2)).toBe(true);
    expect(jsonDepthExceeds('[[],[],[]]', 2)).toBe(false);
    expect(jsonDepthExceeds(JSON.stringify({ s: '[[[[{{{{' }), 1)).toBe(false);
    expect(jsonDepthExceeds(JSON.stringify({ s: 'quote \\" [[[[ \\\\' }), 1)).toBe(false);
    expect(jsonDepthExceeds(JSON.stringify({ 'k[[[': '"\\"[' }), 1)).toBe(false);
    expect(jsonDepthExceeds('1', 0)).toBe(false);
    expect(jsonDepthExceeds('"[[["', 0)).toBe(false);
    expect(jsonDepthExceeds(nestedArrays(64), 64)).toBe(false);
    expect(jsonDepthExceeds(nestedArrays(65), 64)).toBe(true);
    expect(jsonDepthExceeds(nestedObjects(100_000), 64)).toBe(true);
  });

  it('agrees with the real nesting depth of random JSON', () => {
    const depth = (v: unknown): number =>
      typeof v === 'object' && v !== null ? 1 + Math.max(0, ...Object.values(v as Record<string, unknown>).map(depth)) : 0;
    const chars = ['[', ']', '{', '}', '"', '\\', ',', ':', 'a', ' ', '\u00e9', '\n'];
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const gen = (d: number): unknown => {
      const k = rand(d > 6 ? 3 : 5);
      if (k === 0) return rand(100);
      if (k === 1) return Array.from({ length: rand(4) }, () => chars[rand(chars.length)]).join('');
      if (k === 2) return null;
      if (k === 3) return Array.from({ length: rand(4) }, () => gen(d + 1));
      return Object.fromEntries(
        Array.from({ length: rand(4) }, () => [Array.from({ length: rand(3) }, () => chars[rand(chars.length)]).join(''), gen(d + 1)]),
      );
    };
    for (let i = 0; i < 2_000; i++) {
      const v = gen(0);
      const text = JSON.stringify(v, null, rand(2) === 0 ? 1 : undefined);
      const d = depth(v);
      expect(jsonDepthExceeds(text, d), text).toBe(false);
      if (d > 0) expect(jsonDepthExceeds(text, d - 1), text).toBe(true);
    }
  });
});
