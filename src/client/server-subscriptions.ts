import { ClientError, type WireError } from './errors.js';
import type { Session } from './socket.js';
import { Subscription, type SubscriptionHost } from './subscription.js';
import type { Publication, RecoveryFailedContext, StreamPosition, SubscribedContext, UnsubscribedContext } from './types.js';

/** The client events of server-side subscriptions (those the server made at connect). */
export interface ServerSubscriptionEvents {
  /** A server-side subscription was (re)established by a connect reply. */
  subscribed: [SubscribedContext];
  /** A publication of a server-side channel (recovered ones after a reconnect, in order, then live). */
  publication: [Publication];
  /** A reconnect could not recover what was missed in a server-side channel: refetch its state. */
  recoveryFailed: [RecoveryFailedContext];
  /** A server-side subscription ended: the server dropped it, or a later connect no longer names it. */
  unsubscribed: [UnsubscribedContext];
  /** The server refused one server-side channel (permission, limits…); the connection and the other channels stay. */
  subscribeError: [{ channel: string; error: ClientError }];
}

const NO_LONGER_SERVER_SIDE = 'no longer a server-side subscription of this connection';

/**
 * The connection's server-side subscriptions (docs/protocol.md, "Server-side subscriptions"):
 * the connect command tells the server where the client stands in each (`subs`), and each
 * connect reply states them (a subscribe reply's result per channel) and what it refused. They
 * are ordinary Subscriptions kept in the client's map, recovered through `connect`.
 */
export class ServerSubscriptions {
  /** What the last connect command asked to recover from, per channel. */
  private asked = new Map<string, StreamPosition>();

  constructor(
    private readonly subs: Map<string, Subscription>,
    private readonly host: SubscriptionHost,
    private readonly emit: <K extends keyof ServerSubscriptionEvents>(event: K, ...args: ServerSubscriptionEvents[K]) => void,
  ) {}

  /** The server-side subscriptions now. */
  list(): Subscription[] {
    return [...this.subs.values()].filter((s) => s.serverSide);
  }

  /** The connect command's `subs`: the last position of each server-side channel with history. */
  connectParams(): Record<string, unknown> {
    this.asked = new Map();
    const subs: Record<string, { since: StreamPosition }> = {};
    for (const sub of this.list()) {
      const since = sub._connectSince();
      if (since === undefined) continue;
      this.asked.set(sub.channel, since);
      subs[sub.channel] = { since };
    }
    return this.asked.size > 0 ? { subs } : {};
  }

  /**
   * A connect reply arrived: each channel it states is (re)subscribed with its recovery, before
   * client subscriptions resubscribe; a server-side channel it no longer states is ended.
   */
  connected(session: Session): void {
    const stated = isRecord(session.subs) ? session.subs : {};
    const refused = isRecord(session.subsRefused) ? session.subsRefused : {};
    for (const sub of this.list()) {
      if (!Object.hasOwn(stated, sub.channel) && !Object.hasOwn(refused, sub.channel)) {
        sub._push({ push: 'unsubscribe', channel: sub.channel, code: 2000, reason: NO_LONGER_SERVER_SIDE, resubscribe: false });
      }
    }
    for (const [channel, result] of Object.entries(stated)) {
      let sub = this.subs.get(channel);
      if (!sub) {
        sub = new Subscription(this.host, channel, this.forward(channel));
        this.subs.set(channel, sub);
      }
      // A client subscription to the same channel becomes server-side: the server has it already.
      sub._subscribedByConnect(result, this.asked.get(channel));
    }
    for (const [channel, wire] of Object.entries(refused)) {
      const error = ClientError.fromWire(wire as WireError, 'connect');
      const sub = this.subs.get(channel);
      if (sub?.serverSide) sub._push({ push: 'unsubscribe', channel, code: error.code, reason: error.message, resubscribe: false });
      this.emit('subscribeError', { channel, error });
    }
  }

  /** Handlers that turn a server-side subscription's callbacks into client events. */
  private forward(channel: string): ConstructorParameters<typeof Subscription>[2] {
    return {
      onPublication: (pub) => this.emit('publication', pub),
      onSubscribed: (ctx) => this.emit('subscribed', ctx),
      onRecoveryFailed: (ctx) => this.emit('recoveryFailed', ctx),
      onUnsubscribed: (ctx) => this.emit('unsubscribed', ctx),
      onError: (error) => this.emit('subscribeError', { channel, error }),
    };
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
