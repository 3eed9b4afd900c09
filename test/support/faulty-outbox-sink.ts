/** A fault-injecting OutboxSink (see test/support/fault-switch.ts for the faults): the seam between the outbox consumer and the hub. */
import type { OutboxSink } from '../../src/postgres/outbox.js';
import { Faults } from './fault-switch.js';

export const OUTBOX_SINK_METHODS = ['publish', 'notify'] as const;
export type OutboxSinkMethod = (typeof OUTBOX_SINK_METHODS)[number];

/** Forwards to `inner` (a hub's publish and notify) through faults. */
export class FaultyOutboxSink implements OutboxSink {
  readonly faults = new Faults<OutboxSinkMethod>(OUTBOX_SINK_METHODS, []);

  constructor(readonly inner: OutboxSink) {}

  publish(channel: string, data: unknown, idempotencyKey: string): Promise<unknown> {
    return this.faults.run(
      'publish',
      [channel, data, idempotencyKey],
      () => this.inner.publish(channel, data, idempotencyKey),
      () => undefined,
    );
  }

  notify(user: string, data: unknown, idempotencyKey: string): Promise<unknown> {
    return this.faults.run(
      'notify',
      [user, data, idempotencyKey],
      () => this.inner.notify(user, data, idempotencyKey),
      () => undefined,
    );
  }
}
