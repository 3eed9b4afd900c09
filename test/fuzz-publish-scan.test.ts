/**
 * The publish fast path's reader (src/protocol/publish-scan.ts) against the full path
 * (`JSON.parse`, the envelope check, the zod schema), with fast-check:
 * - whatever it accepts, the full path accepts too, with the same id, channel, keys and data
 *   (the raw `data` text parses to the value the full line's parse gives), and the line's
 *   nesting is within the limit;
 * - the lines clients actually send (JSON.stringify of a publish, compact data without
 *   exponents) are accepted, so the fast path is the path taken;
 * - random mutations of such lines (a character inserted, deleted or replaced), random text and
 *   deep nesting around the limit never make it accept something the full path refuses.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonDepthExceeds, parseCommandLine, parseParams, readEnvelope } from '../src/protocol/commands.js';
import { RawJson, scanPublishBody, scanPublishCommand } from '../src/protocol/publish-scan.js';

const MAX_DEPTH = 16;

/** What the full path makes of a line: the publish params, or undefined when it refuses it. */
function fullPath(line: string, maxDepth: number): { id: number; params: Record<string, unknown> } | undefined {
  const decoded = parseCommandLine(line, maxDepth);
  if (!decoded.ok) return undefined;
  const env = readEnvelope(decoded.value);
  if (typeof env === 'string' || env.method !== 'publish' || env.id === undefined) return undefined;
  const parsed = parseParams('publish', env.params);
  return parsed.ok ? { id: env.id, params: parsed.params as Record<string, unknown> } : undefined;
}

/** The scanner never accepts what the full path refuses, and agrees with it on what it accepts. */
function checkAgainstFullPath(line: string, maxDepth = MAX_DEPTH): boolean {
  const scanned = scanPublishCommand(line, maxDepth);
  if (!scanned) return false;
  const full = fullPath(line, maxDepth);
  expect(full, line).toBeDefined();
  expect(jsonDepthExceeds(line, maxDepth)).toBe(false);
  const { data, ...rest } = scanned.params;
  const { data: fullData, ...fullRest } = full!.params;
  expect(scanned.id).toBe(full!.id);
  expect(rest).toEqual(fullRest);
  expect(data).toBeInstanceOf(RawJson);
  expect(data.value()).toStrictEqual(fullData);
  // Compact: no whitespace outside strings, so it can be spliced into any push as it is.
  expect(JSON.stringify(JSON.parse(data.text))).toBe(JSON.stringify(fullData));
  return true;
}

const hasExponent = (text: string): boolean => /[0-9][eE][+-]?[0-9]/.test(text.replace(/"(?:[^"\\]|\\.)*"/g, '""'));

const name = fc.string({ minLength: 1, maxLength: 40 });
const publishLine = fc.record(
  {
    id: fc.integer({ min: 1, max: 2 ** 40 }),
    channel: fc.oneof(name, fc.constantFrom('chat:room', 'a'.repeat(255), 'a'.repeat(256), '')),
    data: fc.jsonValue({ maxDepth: 6 }),
    idempotencyKey: fc.option(fc.string({ maxLength: 130 }), { nil: undefined }),
    key: fc.option(fc.string({ maxLength: 130 }), { nil: undefined }),
    order: fc.constantFrom('imp', 'pim', 'mpi'),
  },
  { requiredKeys: ['id', 'channel', 'data', 'order'] },
);

type PublishLine = typeof publishLine extends fc.Arbitrary<infer T> ? T : never;

function lineOf(p: PublishLine): string {
  const params: Record<string, unknown> = { channel: p.channel, data: p.data };
  if (p.idempotencyKey !== undefined) params.idempotencyKey = p.idempotencyKey;
  if (p.key !== undefined) params.key = p.key;
  const parts: Record<string, string> = {
    i: `"id":${p.id}`,
    m: '"method":"publish"',
    p: `"params":${JSON.stringify(params)}`,
  };
  return `{${[...p.order].map((k) => parts[k]).join(',')}}`;
}

describe('publish fast path scanner (fast-check)', () => {
  it('accepts the publishes clients send and agrees with the full path on them', () => {
    fc.assert(
      fc.property(publishLine, (p) => {
        const line = lineOf(p);
        const accepted = checkAgainstFullPath(line);
        const full = fullPath(line, MAX_DEPTH);
        const plain = (s: string | undefined): boolean => s === undefined || ![...s].some((c) => c === '"' || c === '\\' || c < ' ');
        const vouchable = plain(p.channel) && plain(p.idempotencyKey) && plain(p.key) && !hasExponent(JSON.stringify(p.data));
        if (full && vouchable) expect(accepted, line).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('never accepts a mutated line the full path refuses', () => {
    const mutation = fc.tuple(publishLine, fc.nat(), fc.constantFrom('insert', 'delete', 'replace'), fc.constantFrom(...'{}[]",:\\ \t\r\n0-1.eE+tfnu"abé\u0000\u2028'.split('')));
    fc.assert(
      fc.property(mutation, ([p, at, how, ch]) => {
        const line = lineOf(p);
        const i = at % (line.length + 1);
        const mutated = how === 'insert' ? line.slice(0, i) + ch + line.slice(i) : how === 'delete' ? line.slice(0, i) + line.slice(i + 1) : line.slice(0, i) + ch + line.slice(i + 1);
        checkAgainstFullPath(mutated);
      }),
      { numRuns: 5000 },
    );
  });

  it('never accepts random text, or JSON, the full path refuses', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json().map((j) => `{"id":1,"method":"publish","params":{"channel":"c","data":${j}}}`), fc.json()), (text) => {
        checkAgainstFullPath(text);
      }),
      { numRuns: 3000 },
    );
  });

  it('keeps the nesting limit exactly, counting the envelope and the params', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 2, max: 30 }), fc.boolean(), (levels, maxDepth, objects) => {
        const data = objects ? '{"a":'.repeat(levels) + '1' + '}'.repeat(levels) : '['.repeat(levels) + '1' + ']'.repeat(levels);
        const line = `{"id":7,"method":"publish","params":{"channel":"c","data":${data}}}`;
        const accepted = checkAgainstFullPath(line, maxDepth);
        expect(accepted).toBe(levels + 2 <= maxDepth);
      }),
      { numRuns: 1000 },
    );
  });

  it('declines what it cannot vouch for, which the full path then answers', () => {
    const declined = [
      '{"id":1,"method":"publish","params":{"channel":"c","data":1e5}}',
      '{"id":1,"method":"publish","params":{"channel":"c","data":[1, 2]}}',
      '{"id":1,"method":"publish","params":{"channel":"c\\u0041","data":1}}',
      '{"id":1,"method":"publish","params":{"channel":"c","data":1,"data":2}}',
      '{"id":1,"method":"publish","params":{"channel":"c","data":1,"extra":2}}',
      '{"id":1,"method":"publish","params":{"channel":"c"}}',
      '{"id":1.0,"method":"publish","params":{"channel":"c","data":1}}',
      '{"id":1,"method":"publish","params":{"channel":"c","data":01}}',
      '{"id":1,"method":"publish","params":{"channel":"c","data":"\u0001"}}',
      '{"id":1,"method":"publish","params":{"channel":"c","data":1}} x',
      '{"method":"publish","params":{"channel":"c","data":1}}',
      '{"id":1,"method":"subscribe","params":{"channel":"c"}}',
    ];
    for (const line of declined) expect(scanPublishCommand(line, MAX_DEPTH), line).toBeUndefined();
    const accepted = scanPublishCommand(' {"params":{"data":{"a":[true,false,null,-0.5,"\\n\\u00e9"]},"channel":"c","key":"k"},"method":"publish","id":12} ', MAX_DEPTH);
    expect(accepted).toEqual({ id: 12, params: { channel: 'c', key: 'k', data: new RawJson('{"a":[true,false,null,-0.5,"\\n\\u00e9"]}') } });
  });

  it('reads an HTTP publish body the same way (no `key` there)', () => {
    fc.assert(
      fc.property(publishLine, (p) => {
        const body = JSON.stringify({ channel: p.channel, data: p.data, ...(p.idempotencyKey !== undefined ? { idempotencyKey: p.idempotencyKey } : {}) });
        const scanned = scanPublishBody(body, MAX_DEPTH);
        if (!scanned) return;
        const full = JSON.parse(body) as Record<string, unknown>;
        expect(scanned.channel).toBe(full.channel);
        expect(scanned.idempotencyKey).toBe(full.idempotencyKey);
        expect(scanned.data.value()).toStrictEqual(full.data);
        expect(jsonDepthExceeds(body, MAX_DEPTH)).toBe(false);
      }),
      { numRuns: 1000 },
    );
    expect(scanPublishBody('{"channel":"c","data":1,"key":"k"}', MAX_DEPTH)).toBeUndefined();
  });
});
