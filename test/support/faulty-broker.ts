/** A fault-injecting Broker (see test/support/fault-switch.ts for the faults). */
import type { Broker, BrokerEventHandler, ControlCommand, HealthChecker, PublishOptions, PublishResult } from '../../src/broker/broker.js';
import { isLossy } from '../../src/broker/broker.js';
import { MemoryBroker } from '../../src/broker/memory.js';
import { MemoryIdempotencyLog } from '../../src/history/idempotency-log.js';
import { MemoryHistoryLog } from '../../src/history/memory-log.js';
import type { ChannelEvent, HistoryOptions, HistoryQuery, HistoryResult, Publication } from '../../src/stream/types.js';
import { Faults } from './fault-switch.js';

export const BROKER_METHODS = [
  'publish',
  'publishEvent',
  'publishControl',
  'subscribe',
  'unsubscribe',
  'history',
  'healthy',
  'close',
  // What the broker hands back to its node (the BrokerEventHandler calls):
  'onPublication',
  'onEvent',
  'onControl',
] as const;
export type BrokerMethod = (typeof BROKER_METHODS)[number];

/** The broker `createHub` builds with `dataDir: null`: MemoryBroker over memory logs. */
export function memoryBroker(): MemoryBroker {
  return new MemoryBroker({ history: new MemoryHistoryLog(), idempotency: new MemoryIdempotencyLog() });
}

/**
 * A Broker that forwards to `inner` (default: `memoryBroker()`) through faults. Deliveries to
 * the node go through the faults `onPublication`, `onEvent` and `onControl`.
 */
export class FaultyBroker implements Broker, HealthChecker {
  readonly faults = new Faults<BrokerMethod>(BROKER_METHODS, ['close']);

  constructor(readonly inner: Broker = memoryBroker()) {
    // Keep the inner broker's optional ability (the node checks it with isLossy).
    if (isLossy(inner)) {
      Object.defineProperty(this, 'lossyDelivery', { value: true, enumerable: true });
      Object.defineProperty(this, 'restartEpoch', { value: (channel: string, epoch: string) => inner.restartEpoch(channel, epoch) });
    }
  }

  setHandler(handler: BrokerEventHandler): void {
    const f = this.faults;
    this.inner.setHandler({
      onPublication: (channel: string, pub: Publication, epoch: string) =>
        f.deliver('onPublication', [channel, pub, epoch], () => handler.onPublication(channel, pub, epoch)),
      onEvent: (channel: string, event: ChannelEvent) => f.deliver('onEvent', [channel, event], () => handler.onEvent(channel, event)),
      onControl: (command: ControlCommand) => f.deliver('onControl', [command], () => handler.onControl(command)),
    });
  }

  publish(channel: string, data: string, options: PublishOptions): Promise<PublishResult> {
    return this.faults.run(
      'publish',
      [channel, data, options],
      () => this.inner.publish(channel, data, options),
      () => ({ offset: 0, epoch: '', duplicate: false }),
    );
  }

  publishEvent(channel: string, event: ChannelEvent): Promise<void> {
    return this.faults.run(
      'publishEvent',
      [channel, event],
      () => this.inner.publishEvent(channel, event),
      () => undefined,
    );
  }

  publishControl(command: ControlCommand): Promise<void> {
    return this.faults.run(
      'publishControl',
      [command],
      () => this.inner.publishControl(command),
      () => undefined,
    );
  }

  subscribe(channel: string): Promise<void> {
    return this.faults.run(
      'subscribe',
      [channel],
      () => this.inner.subscribe(channel),
      () => undefined,
    );
  }

  unsubscribe(channel: string): Promise<void> {
    return this.faults.run(
      'unsubscribe',
      [channel],
      () => this.inner.unsubscribe(channel),
      () => undefined,
    );
  }

  history(channel: string, query: HistoryQuery, options: HistoryOptions): Promise<HistoryResult> {
    return this.faults.run(
      'history',
      [channel, query, options],
      () => this.inner.history(channel, query, options),
      () => ({ position: { offset: 0, epoch: '' }, publications: [], earliest: 1 }),
    );
  }

  healthy(): Promise<boolean> {
    const checker = this.inner as Partial<HealthChecker>;
    return this.faults.run(
      'healthy',
      [],
      async () => (typeof checker.healthy === 'function' ? checker.healthy() : true),
      () => false,
    );
  }

  close(): Promise<void> {
    return this.faults.run(
      'close',
      [],
      () => this.inner.close(),
      () => undefined,
    );
  }
}
