/**
 * Property-based fuzzing of the WebSocket protocol (fast-check) against a real hub, over raw
 * `ws` connections: random frames (text, binary, invalid UTF-8, oversized), batches of lines
 * split by `\n`, random JSON shapes, deeply nested JSON (up to 5,000 levels), huge numbers,
 * and, for every method of docs/protocol.md, params with wrong types, missing or extra fields.
 *
 * Properties, checked after every frame with a sentinel (a `ping` sent after it: commands run
 * in order, so once it is answered every earlier command has been answered):
 * - every command line with a valid id gets exactly one reply (result or error) with that id,
 *   and no reply carries an id that was not sent; every line without a usable id gets exactly
 *   one id-less error; `{"method":"pong"}` gets nothing;
 * - or the connection was closed, with the close code its frame calls for (1007 invalid UTF-8,
 *   1009 too big, else 4502/4005 after too many violations), never more than one reply per id;
 * - every error code is in the registry (src/protocol/errors.ts); every line the server sends
 *   is JSON, and every push is of a documented kind;
 * - `data` nested deeper than any allowed `limits.maxJsonDepth` (1000) is refused with 107;
 *   shallower nesting is published or refused with 107, never an internal error (100);
 * - the server stays up: a well-behaved client connected before the run still receives a
 *   publication made after it.
 *
 * The frames are generated in test/support/fuzz-frames.ts; the lanes that send them and check
 * the replies are in test/support/fuzz-lane.ts.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deepLine, frame, type Frame } from './support/fuzz-frames.js';
import { Lane, runLane } from './support/fuzz-lane.js';
import { closeAllServers, createTestServer, type TestServer } from './support/harness.js';
import type { ProtocolClient } from './support/protocol-client.js';

/** Cases per lane; lanes run in parallel, each over its own connection (reopened when closed). */
const LANES = 4;
const RUNS_PER_LANE = 1_750;
const BEFORE_CONNECT_RUNS = 300;
const STRICT_RUNS = 500;
const DEEP_RUNS = 200;

let server: TestServer;
let watcher: ProtocolClient;

beforeAll(async () => {
  server = await createTestServer({
    namespaces: {
      chat: {},
      room: { presence: true, joinLeave: true, typing: true, readReceipts: true },
      fuzz: { clientPublish: 'any' },
      nohist: { history: { size: 0 }, clientPublish: 'any' },
    },
    limits: {
      // The fuzz is one fast client per lane: rates would only turn most of it into 111s.
      commandRate: { perSecond: 1_000_000, burst: 1_000_000 },
      connectionRatePerIp: { perSecond: 1_000_000, burst: 1_000_000 },
    },
  });
  watcher = await server.client({ user: 'watcher' });
  await watcher.subscribe('chat:sentinel');
});

afterAll(async () => {
  await closeAllServers();
});

async function expectWatcherStillServed(tag: string): Promise<void> {
  const before = watcher.pubCount('chat:sentinel');
  await server.hub.publish('chat:sentinel', { tag });
  await watcher.waitForPubCount('chat:sentinel', before + 1);
  expect(watcher.pubs('chat:sentinel').at(-1)?.data).toEqual({ tag });
  expect(watcher.isOpen).toBe(true);
}

const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

describe('WebSocket protocol fuzz', () => {
  it(`${LANES} lanes × ${RUNS_PER_LANE} random frames: one reply per id, registered codes, documented closes (seed ${seed})`, async () => {
    const lanes = Array.from({ length: LANES }, (_, i) => new Lane(`l${i}`, true, () => server));
    await Promise.all(lanes.map((lane, i) => runLane(lane, RUNS_PER_LANE, seed + i)));
    await expectWatcherStillServed('after lanes');
    // The fuzz reached the close paths too (reported for the curious, not asserted).
    const closes = new Map<number, number>();
    for (const l of lanes) for (const [code, n] of l.closes) closes.set(code, (closes.get(code) ?? 0) + n);
    console.log(`fuzz-ws: ${LANES * RUNS_PER_LANE} frames, closes ${JSON.stringify(Object.fromEntries(closes))}`);
  }, 60_000);

  it(`${DEEP_RUNS} deeply nested publications: 107 beyond any allowed depth, never 100 (seed ${seed})`, async () => {
    const deepFrame: fc.Arbitrary<Frame> = fc.record({
      kind: fc.constant('text' as const),
      lines: fc.array(deepLine, { minLength: 1, maxLength: 2 }),
      crlf: fc.constant(false),
      trailingNewline: fc.constant(false),
    });
    await runLane(new Lane('deep', true, () => server), DEEP_RUNS, seed, deepFrame);
    await expectWatcherStillServed('after deep');
  }, 30_000);

  it(`${STRICT_RUNS} random frames on a strict hub (5 violations, 50 commands/s): closes 4502/4005, one reply per id until then (seed ${seed})`, async () => {
    const strict = await createTestServer({
      namespaces: { chat: {}, fuzz: { clientPublish: 'any' } },
      limits: {
        maxViolations: 5,
        commandRate: { perSecond: 50, burst: 20 },
        connectionRatePerIp: { perSecond: 1_000_000, burst: 1_000_000 },
      },
    });
    const lane = new Lane('strict', true, () => strict);
    await runLane(lane, STRICT_RUNS, seed);
    const closes = Object.fromEntries(lane.closes);
    console.log(`fuzz-ws strict: ${STRICT_RUNS} frames, ${lane.opened} connections, closes ${JSON.stringify(closes)}`);
    // The strict limits were reached: the violation closes were exercised, not only the frame-level ones.
    expect((lane.closes.get(4502) ?? 0) + (lane.closes.get(4005) ?? 0)).toBeGreaterThan(0);
    await expectWatcherStillServed('after strict');
  }, 30_000);

  it(`${BEFORE_CONNECT_RUNS} random frames before connect: answered (110 or the command's own error), documented closes (seed ${seed})`, async () => {
    const lane = new Lane('pre', false, () => server);
    await lane.open();
    await fc.assert(
      fc.asyncProperty(frame, async (fr) => {
        // A fresh, unconnected connection per case.
        lane.client.terminate();
        await lane.open();
        await lane.check(fr);
      }),
      { numRuns: BEFORE_CONNECT_RUNS, seed, endOnFailure: true },
    );
    await expectWatcherStillServed('after pre-connect');
  }, 30_000);
});
