import type { Broker } from '../broker/broker.js';
import type { ChannelResolver, ResolvedChannel } from '../channels/channels.js';
import type { PresenceEntry, PresenceStore } from '../presence/presence-store.js';
import type { Webhooks } from '../webhooks/webhooks.js';
import type { Session } from './session.js';
import type { SubscriptionRegistry } from './subscriptions.js';

export interface PresenceFlowParts {
  presence: PresenceStore;
  broker: Broker;
  registry: SubscriptionRegistry;
  resolver: ChannelResolver;
  webhooks: Webhooks | undefined;
  /** The channel info the subscribe hook gave this session in this channel, if any. */
  channelInfo: (session: Session, channel: string) => unknown;
  sessionsOf: (user: string) => ReadonlySet<Session>;
  background: (work: Promise<unknown>) => void;
}

/**
 * Presence of sessions in channels: join when a subscription goes live, leave when it ends,
 * the `join`/`leave` pushes and webhooks that go with them, leaves for expired entries of
 * crashed nodes, and joins announced again after Redis lost presence.
 */
export class PresenceFlow {
  constructor(private readonly parts: PresenceFlowParts) {}

  /** Presence join; the join push goes out only for a user's first session in the channel. */
  async join(session: Session, ch: ResolvedChannel, occupied?: Promise<void>): Promise<void> {
    const { presence, registry, webhooks, broker } = this.parts;
    const entry: PresenceEntry = { user: session.user, client: session.id };
    if (session.identity?.info !== undefined) entry.connInfo = session.identity.info;
    const chanInfo = this.parts.channelInfo(session, ch.name);
    if (chanInfo !== undefined) entry.chanInfo = chanInfo;
    const { userJoined } = await presence.add(ch.name, entry);
    if (session.closed || !registry.get(session, ch.name)) {
      // Left while the join was on its way: take it back.
      await presence.remove(ch.name, entry);
      return;
    }
    if (userJoined && webhooks) {
      await occupied;
      await webhooks.presence('join', ch.name, session.user, session.id);
    }
    if (ch.options.joinLeave && userJoined && session.user !== '') await broker.publishEvent(ch.name, { kind: 'join', info: entry });
  }

  /** Presence leave; the leave push goes out only when a user's last session left. */
  async leave(session: Session, ch: ResolvedChannel, announce = true): Promise<void> {
    const info = { user: session.user, client: session.id };
    const { userLeft } = await this.parts.presence.remove(ch.name, info);
    if (userLeft) await this.parts.webhooks?.presence('leave', ch.name, session.user, session.id);
    if (announce && ch.options.joinLeave && userLeft && session.user !== '') await this.parts.broker.publishEvent(ch.name, { kind: 'leave', info });
  }

  /**
   * A channel's presence put back after Redis lost it: users back in it are announced with
   * `join` (a sweep may have sent their `leave` meanwhile).
   */
  restored(name: string, users: readonly string[]): void {
    let ch: ResolvedChannel;
    try {
      ch = this.parts.resolver.resolve(name);
    } catch {
      return;
    }
    if (!ch.options.joinLeave) return;
    for (const user of users) {
      const session = [...this.parts.sessionsOf(user)].find((s) => this.parts.registry.get(s, name)?.active);
      if (!session || user === '') continue;
      const info: PresenceEntry = { user, client: session.id };
      if (session.identity?.info !== undefined) info.connInfo = session.identity.info;
      this.parts.background(this.parts.broker.publishEvent(name, { kind: 'join', info }));
    }
  }

  /** Leaves for the entries of crashed nodes that expired (each removal is reported to one node only). */
  async sweep(): Promise<void> {
    const gone = (await this.parts.presence.sweepExpired?.()) ?? [];
    for (const { channel, info, userLeft } of gone) {
      let ch: ResolvedChannel;
      try {
        ch = this.parts.resolver.resolve(channel);
      } catch {
        continue;
      }
      if (userLeft) await this.parts.webhooks?.presence('leave', channel, info.user, info.client);
      if (ch.options.joinLeave && userLeft && info.user !== '') {
        await this.parts.broker.publishEvent(channel, { kind: 'leave', info: { user: info.user, client: info.client } });
      }
    }
  }
}
