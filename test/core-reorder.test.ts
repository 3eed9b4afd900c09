/**
 * With a broker whose delivery travels apart from its history reads (Redis: pub/sub on one
 * connection, reads on another), a publication a subscribe's read already covered may arrive
 * after the subscription went live. That is a duplicate, dropped quietly — never mistaken for a
 * stream that went back. A publication at or below the position after one above the read came
 * is the stream going back: the subscription ends with 2001 and the broker restarts the epoch.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Broker, BrokerEventHandler, ControlCommand, LossyDelivery, PublishOptions, PublishResult } from '../src/broker/broker.js';
import type { ChannelEvent, HistoryOptions, HistoryQuery, HistoryResult, Publication } from '../src/stream/types.js';
import { memoryBroker } from './support/faulty-broker.js';
import { closeAllServers, createTestServer, until } from './support/harness.js';

afterEach(closeAllServers);

/** A memory broker whose deliveries to the node wait until `release()`, like pub/sub in flight. */
class DelayedDeliveryBroker implements Broker, LossyDelivery {
  readonly lossyDelivery = true as const;
  readonly restarted: Array<[string, string]> = [];
  private readonly inner = memoryBroker();
  private handler: BrokerEventHandler | undefined;
  private held: Array<() => void> = [];
  holding = false;

  setHandler(handler: BrokerEventHandler): void {
    this.handler = handler;
    this.inner.setHandler({
      onPublication: (channel, pub, epoch) => this.deliver(() => handler.onPublication(channel, pub, epoch)),
      onEvent: (channel, event) => handler.onEvent(channel, event),
      onControl: (command) => handler.onControl(command),
    });
  }

  /** Delivers a publication the broker never stored (what a stream that went back sends). */
  inject(channel: string, pub: Publication, epoch: string): void {
    this.handler?.onPublication(channel, pub, epoch);
  }

  release(): void {
    const held = this.held;
    this.held = [];
    this.holding = false;
    for (const fn of held) fn();
  }

  private deliver(fn: () => void): void {
    if (this.holding) this.held.push(fn);
    else fn();
  }

  publish(channel: string, data: string, options: PublishOptions): Promise<PublishResult> {
    return this.inner.publish(channel, data, options);
  }
  publishEvent(channel: string, event: ChannelEvent): Promise<void> {
    return this.inner.publishEvent(channel, event);
  }
  publishControl(command: ControlCommand): Promise<void> {
    return this.inner.publishControl(command);
  }
  subscribe(channel: string): Promise<void> {
    return this.inner.subscribe(channel);
  }
  unsubscribe(channel: string): Promise<void> {
    return this.inner.unsubscribe(channel);
  }
  /** While set, history reads run at once but their answers wait for it (a slow reply). */
  readGate: Promise<void> | undefined;

  async history(channel: string, query: HistoryQuery, options: HistoryOptions): Promise<HistoryResult> {
    const read = await this.inner.history(channel, query, options);
    await this.readGate;
    return read;
  }
  async restartEpoch(channel: string, epoch: string): Promise<void> {
    this.restarted.push([channel, epoch]);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('publications the read covered, arriving after the subscription went live', () => {
  it('are dropped quietly; a later one at or below the position is the stream going back', async () => {
    const broker = new DelayedDeliveryBroker();
    const s = await createTestServer({ broker, positionCheckIntervalMs: 60_000 });
    const ch = 'chat:reorder';
    const early = await s.client({ user: 'early' });
    await early.subscribe(ch);
    // Three publications stored, their deliveries still in flight…
    broker.holding = true;
    const positions = [];
    for (let n = 1; n <= 3; n++) positions.push(await s.hub.publish(ch, { n }));
    const epoch = positions[0]!.epoch;
    // …while a new subscriber's read already sees them: it stands at 3.
    const late = await s.client({ user: 'late' });
    expect((await late.subscribe(ch)).position).toEqual({ offset: 3, epoch });
    broker.release(); // 1..3 arrive now: for `late`, covered by its read
    await s.hub.publish(ch, { n: 4 }); // the sentinel
    await late.waitFor((m) => m.push === 'pub' && m.channel === ch && m.offset === 4);
    expect(late.pubs(ch).map((m) => m.offset)).toEqual([4]);
    expect(late.pushes('unsubscribe')).toEqual([]);
    expect((await early.waitForPushes(4, (m) => m.push === 'pub' && m.channel === ch)).map((m) => m.offset)).toEqual([1, 2, 3, 4]);
    expect(broker.restarted).toEqual([]);

    // Now offset 3 again, after 4 came live: the stream went back.
    broker.inject(ch, { offset: 3, data: '{"n":"3b"}' }, epoch);
    const unsub = await late.waitFor((m) => m.push === 'unsubscribe' && m.channel === ch);
    expect(unsub).toMatchObject({ code: 2001, resubscribe: true });
    expect(broker.restarted).toEqual([[ch, epoch]]);
    expect(late.pubs(ch).map((m) => m.offset)).toEqual([4]);
  });

  it('on a quiet channel, a reused offset long after the read is the stream going back, not a covered one', async () => {
    const broker = new DelayedDeliveryBroker();
    const s = await createTestServer({ broker, positionCheckIntervalMs: 60_000 });
    const ch = 'chat:quiet';
    const first = await s.hub.publish(ch, { n: 1 });
    await s.hub.publish(ch, { n: 2 });
    const c = await s.client({ user: 'quiet' });
    expect((await c.subscribe(ch)).position).toEqual({ offset: 2, epoch: first.epoch });
    // Nothing comes for longer than any publication the read covered could take to arrive…
    await new Promise((r) => setTimeout(r, 5_200));
    // …then offset 2 again: a failover reused it.
    broker.inject(ch, { offset: 2, data: '{"n":"2b"}' }, first.epoch);
    expect(await c.waitFor((m) => m.push === 'unsubscribe' && m.channel === ch)).toMatchObject({ code: 2001 });
    expect(broker.restarted).toEqual([[ch, first.epoch]]);
  });

  it('a catch-up buffer that overflows while the read is answered is read back from history, not lost', async () => {
    const broker = new DelayedDeliveryBroker();
    // 140 KiB queue: the buffer of a subscription catching up holds less than three 60 KB publications.
    const s = await createTestServer({ broker, limits: { maxQueueBytes: 140 * 1024 } });
    const ch = 'chat:overflow';
    const c = await s.client({ user: 'reader' });
    let release!: () => void;
    broker.readGate = new Promise<void>((r) => (release = r));
    const id = c.id();
    const reply = c.expectReply(id);
    c.sendRaw(JSON.stringify({ id, method: 'subscribe', params: { channel: ch } }));
    // The read ran (nothing stored yet); while its answer is on its way, the buffer overflows…
    await until(() => s.hub.stats().channels === 1, 'the pending subscription');
    for (let n = 1; n <= 3; n++) await s.hub.publish(ch, { n, pad: 'x'.repeat(60_000) });
    await s.hub.publish(ch, { n: 4 }); // …and takes this one after the overflow
    broker.readGate = undefined;
    release();
    expect((await reply).result.position.offset).toBe(0);
    await c.waitFor((m) => m.push === 'pub' && m.channel === ch && m.offset === 4);
    expect(c.pubs(ch).map((m) => m.offset)).toEqual([1, 2, 3, 4]);
    expect(c.pubs(ch)[0]!.epoch).toEqual(expect.any(String)); // the stream's epoch, adopted
    expect(c.pushes('unsubscribe')).toEqual([]);
  });
});
