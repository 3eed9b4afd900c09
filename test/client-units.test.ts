import { describe, expect, it } from 'vitest';
import { Backoff } from '../src/client/backoff.js';
import { decodeFrame, joinFrames, utf8Length } from '../src/client/codec.js';
import { ClientErrorCode, shouldReconnect } from '../src/client/constants.js';
import { ClientError } from '../src/client/errors.js';
import { keyGenerator, OfflineQueue, type QueuedPublish } from '../src/client/offline-queue.js';
import { shouldReconnect as serverShouldReconnect } from '../src/protocol/close-codes.js';

/** A seeded generator (mulberry32), so the jitter is real but the test is repeatable. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('client backoff', () => {
  const options = { minMs: 100, maxMs: 5_000, factor: 2 };

  it('keeps every delay within [minMs, maxMs], also after many attempts', () => {
    for (const seed of [1, 2, 3, 42]) {
      const backoff = new Backoff(options, seeded(seed));
      for (let i = 0; i < 200; i++) {
        const d = backoff.next();
        expect(d).toBeGreaterThanOrEqual(options.minMs);
        expect(d).toBeLessThanOrEqual(options.maxMs);
      }
    }
    // The extremes of the random source.
    for (const r of [0, 0.999999, 1]) {
      const backoff = new Backoff(options, () => r);
      for (let i = 0; i < 50; i++) {
        const d = backoff.next();
        expect(d).toBeGreaterThanOrEqual(options.minMs);
        expect(d).toBeLessThanOrEqual(options.maxMs);
      }
    }
  });

  it('grows the ceiling exponentially by factor: random = 1 gives min + min·factor^n, capped', () => {
    const backoff = new Backoff({ minMs: 100, maxMs: 5_000, factor: 3 }, () => 1);
    expect([1, 2, 3, 4, 5].map(() => backoff.next())).toEqual([200, 400, 1000, 2800, 5000]);
    expect(backoff.attempts).toBe(5);
    backoff.reset();
    expect(backoff.next()).toBe(200);
  });

  it('is jittered: delays for one attempt spread over the range, not one value', () => {
    const random = seeded(7);
    const third: number[] = [];
    for (let i = 0; i < 200; i++) {
      const backoff = new Backoff(options, random);
      backoff.next();
      backoff.next();
      third.push(backoff.next()); // ceiling 400: delays in [100, 500]
    }
    expect(new Set(third).size).toBeGreaterThan(100);
    expect(Math.min(...third)).toBeLessThan(150);
    expect(Math.max(...third)).toBeGreaterThan(450);
    for (const d of third) expect(d).toBeLessThanOrEqual(500);
  });

  it('uses the injected random function (full jitter: uniform below the ceiling)', () => {
    const backoff = new Backoff(options, () => 0.5);
    expect(backoff.next()).toBe(150); // 100 + 0.5 × 100
    expect(backoff.next()).toBe(200); // 100 + 0.5 × 200
    expect(backoff.next()).toBe(300); // 100 + 0.5 × 400
  });

  it('refuses bad options', () => {
    expect(() => new Backoff({ minMs: -1, maxMs: 10, factor: 2 })).toThrow(/minMs/);
    expect(() => new Backoff({ minMs: 10, maxMs: 5, factor: 2 })).toThrow(/maxMs/);
    expect(() => new Backoff({ minMs: 10, maxMs: 50, factor: 0.5 })).toThrow(/factor/);
  });
});

describe('client codec', () => {
  it('splits a frame on \\n and skips empty and undecodable lines', () => {
    const bad: string[] = [];
    const frame = '{"id":1,"result":{}}\n\n{"push":"pub","channel":"a","offset":2,"data":"x"}\nnot json\n[1]\n{"push":"ping"}';
    const out = decodeFrame(frame, (l) => bad.push(l));
    expect(out).toEqual([{ id: 1, result: {} }, { push: 'pub', channel: 'a', offset: 2, data: 'x' }, { push: 'ping' }]);
    expect(bad).toEqual(['not json', '[1]']);
  });

  it('joins commands into frames no bigger than the limit', () => {
    const lines = ['a'.repeat(40), 'b'.repeat(40), 'c'.repeat(40), 'd'.repeat(200)];
    const frames = joinFrames(lines, 100);
    expect(frames).toEqual([`${'a'.repeat(40)}\n${'b'.repeat(40)}`, 'c'.repeat(40), 'd'.repeat(200)]);
  });

  it('counts UTF-8 bytes', () => {
    for (const s of ['', 'abc', 'é', '€', '😀', 'a😀é€']) expect(utf8Length(s)).toBe(Buffer.byteLength(s));
  });
});

describe('client close-code rule', () => {
  it('matches the server rule for every documented code', () => {
    for (const code of [1000, 1001, 1006, 1007, 1008, 1009, 4000, 4001, 4002, 4003, 4004, 4005, 4006, 4007, 4008, 4500, 4501, 4502, 4999]) {
      expect(shouldReconnect(code), String(code)).toBe(serverShouldReconnect(code));
    }
  });
});

describe('offline queue', () => {
  const item = (seq: number): QueuedPublish => ({
    seq,
    channel: 'c',
    data: seq,
    idempotencyKey: `k${seq}`,
    attempts: 0,
    resolve: () => undefined,
    reject: () => undefined,
  });

  it('is bounded with a clear, temporary QUEUE_FULL error', () => {
    const q = new OfflineQueue(2);
    q.push(item(1));
    q.push(item(2));
    let err: unknown;
    try {
      q.push(item(3));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).code).toBe(ClientErrorCode.QUEUE_FULL);
    expect((err as ClientError).codeName).toBe('QUEUE_FULL');
    expect((err as ClientError).temporary).toBe(true);
    expect((err as ClientError).message).toMatch(/offline queue is full \(2/);
  });

  it('takes back publishes that were in flight at their place, even beyond capacity', () => {
    const q = new OfflineQueue(2);
    q.push(item(4));
    q.push(item(5));
    q.requeue(item(2));
    q.requeue(item(3));
    q.requeue(item(1));
    expect(q.drain().map((i) => i.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('generates distinct keys per client', () => {
    const a = keyGenerator();
    const b = keyGenerator();
    const keys = new Set([a(), a(), a(), b(), b()]);
    expect(keys.size).toBe(5);
    for (const k of keys) expect(k.length).toBeLessThanOrEqual(128);
  });
});
