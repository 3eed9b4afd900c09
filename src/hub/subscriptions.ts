import { withTimeout } from '../limits/timeout.js';
import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { HubError } from '../protocol/errors.js';
import type { Session } from './session.js';
import type { Subscription } from './subscription.js';

const NONE: ReadonlyMap<string, Subscription> = new Map();

/**
 * Owns who is subscribed to what on this node: the index from channel to its subscriptions,
 * each session's subscriptions by channel, and this node's interest in each channel at the
 * Broker (ref-counted: one `broker.subscribe` when the first local subscriber arrives, one
 * `unsubscribe` when the last leaves). Nothing else writes these maps.
 */
export class SubscriptionRegistry {
  private readonly byChannel = new Map<string, Set<Subscription>>();
  private readonly bySession = new Map<Session, Map<string, Subscription>>();
  private readonly interest = new Map<string, Promise<void>>();

  constructor(
    private readonly broker: Broker,
    private readonly logger: Logger,
    /** Bound of a broker subscribe; past it the subscribe fails with 114. */
    private readonly timeoutMs: number,
  ) {}

  get(session: Session, channel: string): Subscription | undefined {
    return this.bySession.get(session)?.get(channel);
  }

  /** Whether `sub` is still the session's subscription to its channel. */
  current(sub: Subscription): boolean {
    return !sub.session.closed && this.get(sub.session, sub.channel.name) === sub;
  }

  of(session: Session): ReadonlyMap<string, Subscription> {
    return this.bySession.get(session) ?? NONE;
  }

  subscribers(channel: string): ReadonlySet<Subscription> | undefined {
    return this.byChannel.get(channel);
  }

  /** Channels with local subscribers, and how many each has. */
  channelCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const [name, subs] of this.byChannel) counts.set(name, subs.size);
    return counts;
  }

  get channelCount(): number {
    return this.byChannel.size;
  }

  /** A snapshot of the index, for walks that await between channels. */
  snapshot(): Array<[string, Subscription[]]> {
    return [...this.byChannel].map(([name, subs]) => [name, [...subs]]);
  }

  /**
   * Adds a subscription (the caller made it pending) and resolves once the broker delivers the
   * channel to this node. On failure the subscription is removed again and the error thrown.
   */
  async add(sub: Subscription): Promise<void> {
    const name = sub.channel.name;
    let mine = this.bySession.get(sub.session);
    if (!mine) {
      mine = new Map();
      this.bySession.set(sub.session, mine);
    }
    mine.set(name, sub);
    let subs = this.byChannel.get(name);
    if (!subs) {
      subs = new Set();
      this.byChannel.set(name, subs);
    }
    subs.add(sub);
    let ready = this.interest.get(name);
    if (!ready) {
      ready = withTimeout(this.broker.subscribe(name), this.timeoutMs, () => new HubError(114, 'broker subscribe timed out'));
      this.interest.set(name, ready);
      ready.catch(() => {
        if (this.interest.get(name) === ready) this.interest.delete(name);
      });
    }
    try {
      await ready;
    } catch (err) {
      this.remove(sub);
      throw err instanceof HubError ? err : new HubError(114, 'broker subscribe failed');
    }
  }

  /** Removes a subscription; false when it was not registered. The last one drops the interest. */
  remove(sub: Subscription): boolean {
    const name = sub.channel.name;
    const mine = this.bySession.get(sub.session);
    if (mine?.get(name) !== sub) return false;
    mine.delete(name);
    if (mine.size === 0) this.bySession.delete(sub.session);
    sub.session.unsubscribed?.(name);
    const subs = this.byChannel.get(name);
    if (subs?.delete(sub) && subs.size === 0) {
      this.byChannel.delete(name);
      const ready = this.interest.get(name);
      this.interest.delete(name);
      void (ready ?? Promise.resolve())
        .then(() => (this.byChannel.has(name) ? undefined : this.broker.unsubscribe(name)))
        .catch((err: unknown) => this.logger.warn({ err, channel: name }, 'broker unsubscribe failed'));
    }
    return true;
  }

  /** Removes every subscription of a session and returns them. */
  removeAll(session: Session): Subscription[] {
    const subs = [...this.of(session).values()];
    for (const sub of subs) this.remove(sub);
    this.bySession.delete(session);
    return subs;
  }
}
