import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { UnsubscribeCode } from '../protocol/close-codes.js';
import type { StreamPosition } from '../stream/types.js';
import { GAP_REASON } from './fanout.js';
import { startsCurrentStream } from './recovery.js';
import type { Subscription } from './subscription.js';
import type { SubscriptionRegistry } from './subscriptions.js';

/**
 * For brokers whose delivery may lose messages (Redis pub/sub): finds subscriptions that missed
 * publications without a later one revealing it. A subscription is lost when it is on another
 * epoch than the stream (the stream was lost, or it never existed when the subscription got
 * its position and exists now), or behind the top now and still behind the top seen one check
 * earlier (so publications merely in flight are not mistaken for losses). Those resubscribe with
 * recovery. A stream that went back (a failover lost writes) is found by the next publication
 * (fanout.ts), or here by a subscription above the top at two checks in a row.
 */
export class PositionCheck {
  private running = false;

  constructor(
    private readonly broker: Broker,
    private readonly registry: SubscriptionRegistry,
    private readonly logger: Logger,
    private readonly kick: (sub: Subscription, code: number, reason: string, resubscribe: boolean) => void,
    private readonly wentBack: (channel: string, epoch: string) => void,
  ) {}

  async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (const [name, subs] of this.registry.snapshot()) {
        const ch = subs[0]?.channel;
        if (!ch || ch.history.size === 0) continue;
        let top: StreamPosition;
        try {
          top = (await this.broker.history(name, { limit: 0 }, ch.history)).position;
        } catch (err) {
          this.logger.debug({ err, channel: name }, 'position check failed');
          continue;
        }
        for (const sub of subs) {
          if (!sub.active || !this.registry.current(sub)) continue;
          if (top.epoch === '' && sub.offset === 0) continue; // still nothing stored
          // At 0 of a young epoch of its own, the stream created since is its stream.
          const same = sub.epoch === top.epoch || startsCurrentStream(name, sub, Date.now(), ch.history.metaTtlMs);
          // Ahead of the top at two checks in a row, the second top still below where it stood at
          // the first: the stream went back (one check ahead is publications delivered after the read).
          if (same && sub.aheadOf !== 0 && top.offset < sub.aheadOf) {
            this.wentBack(name, top.epoch);
            this.kick(sub, UnsubscribeCode.INSUFFICIENT_STATE, GAP_REASON, true);
            continue;
          }
          sub.aheadOf = same && sub.offset > top.offset ? sub.offset : 0;
          const lost = !same || (sub.behindTop !== 0 && sub.offset < sub.behindTop);
          if (lost) this.kick(sub, UnsubscribeCode.INSUFFICIENT_STATE, GAP_REASON, true);
          else sub.behindTop = sub.offset < top.offset ? top.offset : 0;
        }
      }
    } finally {
      this.running = false;
    }
  }
}
