import type { Metrics } from '../metrics/metrics.js';
import { UnsubscribeCode } from '../protocol/close-codes.js';
import { encodeChannelEvent } from '../protocol/pushes.js';
import type { ChannelEvent, Publication } from '../stream/types.js';
import { PublicationFrames } from './publication-frames.js';
import { startsCurrentStream } from './recovery.js';
import type { Subscription } from './subscription.js';
import type { SubscriptionRegistry } from './subscriptions.js';

export const GAP_REASON = 'missed publications: resubscribe with since';

/**
 * How long after a history read a publication it covered may still come through the broker.
 * A failover that reuses offsets takes longer than this (Redis is unreachable meanwhile), so a
 * reused offset is never taken for a covered one, even on a quiet channel.
 */
const REORDER_WINDOW_MS = 5_000;

/**
 * Fan-out of what the Broker delivers to this node: each publication is encoded once per
 * protocol version (PublicationFrames) and the same bytes are queued on every subscriber of
 * that version. Each live publication must follow its
 * subscription's position exactly (offset + 1, same epoch); anything else (a gap, a rollback, a
 * new epoch) ends the subscription with 2001 so the client resubscribes and recovers.
 */
export class Fanout {
  constructor(
    private readonly registry: SubscriptionRegistry,
    private readonly metrics: Metrics,
    /** Bound of a catching-up subscription's buffer of live publications plus its session's queue. */
    private readonly bufferBytes: number,
    /** Ends a subscription from the server side (the Node's one teardown path). */
    private readonly kick: (sub: Subscription, code: number, reason: string, resubscribe: boolean) => void,
    /** The stream went back in `epoch` (a live publication at or below a delivered offset). */
    private readonly wentBack: (channel: string, epoch: string) => void,
  ) {}

  /** The last `young` answer, valid for the broadcast under way. */
  private youngMemo: { channel: string; epoch: string; young: boolean } | undefined;

  onPublication(channel: string, pub: Publication, epoch: string): void {
    const subs = this.registry.subscribers(channel);
    if (!subs) return;
    // Every subscriber of a channel is in the channel's one namespace.
    const first = subs.values().next().value;
    if (!first) return;
    const frames = new PublicationFrames(channel, pub, pub.offset === 1 ? epoch : undefined, first.channel.options.publicationInfo);
    try {
      // Deleting from a Set while iterating it is safe: a kick removes only the current one.
      for (const sub of subs) {
        if (sub.buffered) sub.buffer({ pub, frames, epoch }, this.bufferBytes);
        else this.deliver(sub, pub, frames, epoch, false);
      }
    } finally {
      this.youngMemo = undefined;
    }
    this.metrics.delivered(subs.size);
  }

  /**
   * Sends one publication to one subscription if it is the next one. `seenIsDuplicate`: a
   * publication at or below the position is one recovery already sent (true while going live);
   * for a live subscription it is one only while nothing above its reads came (Subscription.pastHistory).
   */
  deliver(sub: Subscription, pub: Publication, frames: PublicationFrames, epoch: string, seenIsDuplicate: boolean): void {
    if (pub.offset > 0) {
      // The first publication of a stream that did not exist when the client got its position
      // (offset 0 of a young epoch of its own): it carries the stream's epoch, which the client adopts.
      if (pub.offset === 1 && sub.offset === 0 && epoch !== sub.epoch && this.young(sub)) sub.epoch = epoch;
      const same = epoch === sub.epoch;
      if (same && pub.offset <= sub.offset) {
        // A publication a history read already covered, reaching this node through the broker
        // after the read's reply (two connections, no order between them). Anything else at or
        // below the position means the stream went back (a failover lost writes).
        const covered = pub.offset <= sub.historyTop && !sub.pastHistory && Date.now() - sub.readAt < REORDER_WINDOW_MS;
        if (seenIsDuplicate || covered) return;
        this.wentBack(sub.channel.name, epoch);
      }
      if (pub.offset > sub.historyTop) sub.pastHistory = true;
      if (!same || pub.offset !== sub.offset + 1) {
        this.kick(sub, UnsubscribeCode.INSUFFICIENT_STATE, GAP_REASON, true);
        return;
      }
      sub.offset = pub.offset;
    }
    sub.session.deliver(sub, pub, frames);
  }

  /**
   * Whether a subscription stands at 0 of a young provisional epoch of its channel. Subscribers
   * that got their position in the same second share the epoch, so the check (a digest) is
   * made once per epoch and broadcast, not once per subscriber.
   */
  private young(sub: Subscription): boolean {
    const memo = this.youngMemo;
    if (memo?.channel !== sub.channel.name || memo.epoch !== sub.epoch) {
      const young = startsCurrentStream(sub.channel.name, sub, Date.now(), sub.channel.history.metaTtlMs);
      this.youngMemo = { channel: sub.channel.name, epoch: sub.epoch, young };
      return young;
    }
    return memo.young;
  }

  onEvent(channel: string, event: ChannelEvent): void {
    const subs = this.registry.subscribers(channel);
    if (!subs) return;
    const frame = Buffer.from(encodeChannelEvent(channel, event));
    if (event.kind === 'emit') {
      // A client event reaches every other connection; the newest per sender and key wins.
      const key = `e${channel}\0${event.client}\0${event.key ?? ''}`;
      for (const sub of subs) if (sub.active && sub.session.id !== event.client) sub.session.push('emit', frame, key);
      return;
    }
    // A user does not see their own join or typing (from any of their connections).
    const from = event.kind === 'read' ? undefined : event.kind === 'typing' ? event.user : event.info.user;
    for (const sub of subs) {
      if (sub.active && (from === undefined || from === '' || sub.session.user !== from)) sub.session.push(event.kind, frame);
    }
  }
}
