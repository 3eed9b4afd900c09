import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import type { ResolvedChannel } from '../channels/channels.js';
import { CloseCode, UnsubscribeCode } from '../protocol/close-codes.js';
import { HubError } from '../protocol/errors.js';
import type { StreamPosition } from '../stream/types.js';
import { GAP_REASON, type Fanout } from './fanout.js';
import { isLatestValue, recoverLatest } from './latest.js';
import { exactFrom, isRecoverable, recover, startsCurrentStream, type RecoveryLimits } from './recovery.js';
import type { OpenedResult, Session, SubscribeAnswer } from './session.js';
import { Subscription } from './subscription.js';
import type { SubscriptionRegistry } from './subscriptions.js';

const DRAIN_POLL_MS = 5;

export interface SubscribeParts {
  broker: Broker;
  registry: SubscriptionRegistry;
  fanout: Fanout;
  logger: Logger;
  limits: RecoveryLimits & { maxChannels: number; slowConsumerMs: number };
  /** Ends a subscription from the server side (the Node's teardown path). */
  kick(sub: Subscription, code: number, reason: string, resubscribe: boolean): void;
  /** Called once a subscription is live (presence join). */
  live(sub: Subscription): void;
  /** Runs work nobody awaits, tracked for shutdown. */
  background(work: Promise<unknown>): void;
}

/**
 * The one subscribe path, for WebSocket and SSE alike: open (limits, a pending subscription
 * buffering live publications, broker interest), recover (first page, answered once), catch up
 * (later pages, each sent only when the session's queue has drained below one page, so a
 * recovery of any size never makes its client a slow consumer), then go live (buffered
 * publications after the position, checked for gaps). Every step after an await re-checks
 * that the session and the subscription are still there.
 */
export class SubscribeFlow {
  constructor(private readonly parts: SubscribeParts) {}

  /** Resolves once answered; undefined when the session or the subscription went away meanwhile. */
  async subscribe(
    session: Session,
    ch: ResolvedChannel,
    since: StreamPosition | undefined,
    answer: SubscribeAnswer,
  ): Promise<Subscription | undefined> {
    const { registry, limits } = this.parts;
    if (registry.get(session, ch.name)) throw new HubError(105);
    if (registry.of(session).size >= limits.maxChannels) throw new HubError(106, 'too many channels for this connection');
    if (session.closed) return undefined;
    const sub = new Subscription(session, ch);
    await registry.add(sub);
    if (!registry.current(sub)) {
      registry.remove(sub);
      return undefined;
    }
    const marker = sub.overflows;
    let recovery;
    try {
      const latest = isLatestValue(ch);
      recovery = latest ? await recoverLatest(this.parts.broker, ch, since !== undefined, limits) : await recover(this.parts.broker, ch, since, limits);
    } catch (err) {
      registry.remove(sub);
      throw err;
    }
    if (!registry.current(sub)) {
      registry.remove(sub);
      return undefined;
    }
    sub.offset = recovery.position.offset;
    sub.epoch = recovery.position.epoch;
    sub.historyTop = recovery.top.offset;
    sub.readAt = Date.now();
    const result: OpenedResult = { position: recovery.position, recoverable: isRecoverable(ch) };
    if (since) result.recovered = recovery.recovered === true;
    if (isLatestValue(ch)) result.latest = true;
    if ((recovery.recovered || result.latest) && recovery.position.offset < recovery.top.offset) result.top = recovery.top;
    answer.opened(sub, result, recovery.publications);
    if (sub.offset >= recovery.top.offset && sub.overflows === marker) this.goLive(sub);
    else this.parts.background(this.catchUp(sub, answer, recovery.top, marker));
    return sub;
  }

  /** Pages the rest of a recovery (and whatever was published meanwhile) until caught up. */
  private async catchUp(sub: Subscription, answer: SubscribeAnswer, top: StreamPosition, marker: number): Promise<void> {
    const { registry, broker, limits } = this.parts;
    const ch = sub.channel;
    try {
      while (sub.offset < top.offset || sub.overflows !== marker) {
        if (!(await this.drained(sub))) return;
        marker = sub.overflows;
        const read = await broker.history(
          ch.name,
          { sinceOffset: sub.offset, limit: limits.maxPublications, maxBytes: limits.pageBytes },
          ch.history,
        );
        if (!registry.current(sub)) return;
        // At 0 of a young provisional epoch, the stream created since is this subscription's
        // stream: it takes its epoch (the page's offset-1 publication names it to the client).
        if (read.position.epoch !== '' && startsCurrentStream(ch.name, sub, Date.now(), ch.history.metaTtlMs)) {
          sub.epoch = read.position.epoch;
        }
        // A latest-value stream holds the newest per key (its offsets have gaps): every key
        // changed after the position is in the pages, whatever the offsets.
        const latest = isLatestValue(ch);
        if (read.position.epoch !== sub.epoch || (!latest && !exactFrom(read, sub.offset, Number.MAX_SAFE_INTEGER))) {
          this.parts.kick(sub, UnsubscribeCode.INSUFFICIENT_STATE, GAP_REASON, true);
          return;
        }
        top = read.position;
        sub.historyTop = top.offset;
        sub.pastHistory = false;
        sub.readAt = Date.now();
        if (read.publications.length > 0) {
          answer.page(sub, read.publications);
          sub.offset = read.publications.at(-1)!.offset;
        } else if (latest) sub.offset = top.offset; // the newest publications expired: nothing is left
      }
      this.goLive(sub);
    } catch (err) {
      this.parts.logger.warn({ err, channel: ch.name }, 'recovery page failed');
      if (registry.current(sub))
        this.parts.kick(sub, UnsubscribeCode.INSUFFICIENT_STATE, 'recovery interrupted: resubscribe with since', true);
    }
  }

  /** Waits until the session's queue is below one page; false if it went away or never drains. */
  private async drained(sub: Subscription): Promise<boolean> {
    const { registry, limits } = this.parts;
    const deadline = Date.now() + limits.slowConsumerMs;
    while (sub.session.queuedBytes > limits.pageBytes) {
      if (!registry.current(sub)) return false;
      if (Date.now() >= deadline) {
        sub.session.close(CloseCode.SLOW_CONSUMER);
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
    }
    return registry.current(sub);
  }

  /** Live from the position on: buffered publications after it first, nothing in between. */
  private goLive(sub: Subscription): void {
    const buffered = sub.buffered ?? [];
    sub.buffered = null;
    sub.bufferedBytes = 0;
    for (const b of buffered) {
      this.parts.fanout.deliver(sub, b.pub, b.frames, b.epoch, true);
      if (!this.parts.registry.current(sub)) return;
    }
    this.parts.live(sub);
  }
}
