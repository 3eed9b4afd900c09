import { describe, expect, it } from 'vitest';
import type { ReplyCallback } from '../src/client/reply-table.js';
import { Subscription, type SubscriptionHost } from '../src/client/subscription.js';

/** A Subscription on a fake client: commands are collected, replies and pushes are fed by hand. */
function fakeSubscription(): {
  sub: Subscription<number>;
  sent: Array<{ method: string; params: Record<string, unknown>; reply: ReplyCallback }>;
  got: Array<[number, boolean]>;
  failed: number;
} {
  const sent: Array<{ method: string; params: Record<string, unknown>; reply: ReplyCallback }> = [];
  const host: SubscriptionHost = {
    connected: true,
    send: (method, params, reply) => void sent.push({ method, params: params as Record<string, unknown>, reply }),
    call: () => Promise.resolve({}),
    publish: () => Promise.resolve({ offset: 0, epoch: '' }),
    removeSubscription: () => undefined,
    retryDelay: () => 10,
    reportError: () => undefined,
    typingThrottleMs: 1000,
  };
  const state = { got: [] as Array<[number, boolean]>, failed: 0 };
  const sub = new Subscription<number>(host, 'c', {
    onPublication: (p) => state.got.push([p.offset, p.recovered]),
    onRecoveryFailed: () => (state.failed += 1),
  });
  return {
    sub,
    sent,
    get got() {
      return state.got;
    },
    get failed() {
      return state.failed;
    },
  };
}

const pub = (offset: number): { push: string; channel: string; offset: number; data: number } => ({
  push: 'pub',
  channel: 'c',
  offset,
  data: offset,
});

describe('subscription: paged recovery', () => {
  it('takes the first page from the reply and the rest as pushes, once each, in order', () => {
    const f = fakeSubscription();
    f.sub._connected();
    f.sent.shift()!.reply(undefined, { position: { offset: 3, epoch: 'E' }, recoverable: true });
    f.sub._push(pub(4));
    f.sub._transportLost();
    f.sub._connected();
    const resubscribe = f.sent.shift()!;
    expect(resubscribe.params).toEqual({ channel: 'c', since: { offset: 4, epoch: 'E' } });
    // Missed: 5..10. The reply carries 5..7 and its position is 7 (the last carried), not the top.
    resubscribe.reply(undefined, {
      position: { offset: 7, epoch: 'E' },
      top: { offset: 10, epoch: 'E' },
      recoverable: true,
      recovered: true,
      publications: [5, 6, 7].map((offset) => ({ offset, data: offset })),
    });
    // The rest of the recovery as ordinary pushes (8..10), then live ones; 7 and 9 again are duplicates.
    for (const o of [8, 9, 7, 9, 10, 11]) f.sub._push(pub(o));
    expect(f.got.map(([o]) => o)).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
    // Up to the reply's `top`, the pushes are recovered ones too.
    expect(f.got.filter(([, recovered]) => recovered).map(([o]) => o)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(f.failed).toBe(0);
    expect(f.sub.position).toEqual({ offset: 11, epoch: 'E' });
  });

  it('resubscribes from the last publication delivered when the connection drops between pages', () => {
    const f = fakeSubscription();
    f.sub._connected();
    f.sent.shift()!.reply(undefined, { position: { offset: 0, epoch: 'E' }, recoverable: true });
    f.sub._transportLost();
    f.sub._connected();
    f.sent.shift()!.reply(undefined, {
      position: { offset: 2, epoch: 'E' },
      recoverable: true,
      recovered: true,
      publications: [1, 2].map((offset) => ({ offset, data: offset })),
    });
    f.sub._push(pub(3));
    f.sub._transportLost();
    f.sub._connected();
    expect(f.sent.shift()!.params).toEqual({ channel: 'c', since: { offset: 3, epoch: 'E' } });
  });
});
