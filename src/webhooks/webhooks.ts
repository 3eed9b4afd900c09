import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { NamespaceOptions, WebhookEventType, WebhookOptions } from '../config/options.js';
import { WebhookDelivery, type DeliveryCounters } from './delivery.js';
import { newEvent, type FailedWebhookEvent, type MemberKind, type WebhookQueueStatus, type WebhookStore } from './events.js';

/**
 * Webhooks of one node (docs/backend.md). The node reports what it sees (a user's first and last
 * connection here, a channel's first and last subscriber here, presence joins and leaves already
 * deduplicated across nodes, client publications); the store turns memberships into events
 * counted over every node; the delivery sends the queue in order.
 */
export class Webhooks {
  readonly node = randomUUID();
  private readonly enabled: ReadonlySet<WebhookEventType>;
  private readonly local: Record<MemberKind, Map<string, number>> = { u: new Map(), c: new Map() };
  /** Store updates per membership, one after another, so a quick add/remove pair keeps its order. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly delivery: WebhookDelivery;
  private readonly sweepTimer: NodeJS.Timeout;
  private sweeping = false;
  private readonly tracksUsers: boolean;
  private readonly tracksChannels: boolean;
  /** Events this node delivered, and set aside after their retries ran out, since it started. */
  private readonly totals = { delivered: 0, failed: 0 };

  constructor(
    private readonly options: WebhookOptions,
    private readonly store: WebhookStore,
    counters: DeliveryCounters,
    private readonly logger: Logger,
  ) {
    const totals = this.totals;
    const counted: DeliveryCounters = {
      delivered: (n) => {
        totals.delivered += n;
        counters.delivered(n);
      },
      failed: (n) => {
        totals.failed += n;
        counters.failed(n);
      },
    };
    this.enabled = new Set(options.events);
    this.tracksUsers = this.enabled.has('user.online') || this.enabled.has('user.offline');
    this.tracksChannels = this.enabled.has('channel.occupied') || this.enabled.has('channel.vacated');
    this.delivery = new WebhookDelivery(options, store, this.node, counted, logger);
    this.sweepTimer = setInterval(() => void this.sweep(), options.sweepIntervalMs);
    this.sweepTimer.unref();
    void this.sweep();
    this.delivery.start();
  }

  userConnected(user: string): void {
    if (this.tracksUsers && user !== '') void this.count('u', user, 1);
  }

  userDisconnected(user: string): void {
    if (this.tracksUsers && user !== '') void this.count('u', user, -1);
  }

  /** A subscription went live; resolves once a channel.occupied it causes is queued (never rejects). */
  channelLive(channel: string): Promise<void> {
    return this.tracksChannels ? this.count('c', channel, 1) : Promise.resolve();
  }

  channelGone(channel: string): void {
    if (this.tracksChannels) void this.count('c', channel, -1);
  }

  /** A user's first join / last leave in a channel (across nodes, as the presence store reports it). */
  presence(kind: 'join' | 'leave', channel: string, user: string, client: string): Promise<void> {
    const type = kind === 'join' ? 'presence.join' : 'presence.leave';
    if (!this.enabled.has(type) || user === '') return Promise.resolve();
    return this.queue(type, { channel, user, client });
  }

  /** A client publication, for namespaces with `webhooks.publication`. */
  publication(ns: NamespaceOptions, data: Record<string, unknown>): Promise<void> {
    if (!this.enabled.has('publication') || !ns.webhooks.publication) return Promise.resolve();
    return this.queue('publication', data);
  }

  failed(limit: number): Promise<FailedWebhookEvent[]> {
    return this.store.failed(limit);
  }

  async retry(ids: readonly string[] | undefined): Promise<number> {
    const moved = await this.store.retry(ids);
    this.delivery.poke();
    return moved;
  }

  /**
   * The admin UI's status: events queued and set aside (in the store, across nodes), and what
   * this node delivered and set aside since it started.
   */
  async status(): Promise<WebhookQueueStatus & { deliveredSinceStart: number; failedSinceStart: number }> {
    const { queued, failed } = await this.store.status();
    return { queued, failed, deliveredSinceStart: this.totals.delivered, failedSinceStart: this.totals.failed };
  }

  /** Stops sweeping and delivering (the queue stays in the store for the next start or node). */
  async stop(): Promise<void> {
    clearInterval(this.sweepTimer);
    await Promise.allSettled([...this.chains.values()]);
    await this.delivery.stop();
  }

  private async queue(type: WebhookEventType, data: Record<string, unknown>): Promise<void> {
    await this.store.enqueue([newEvent(type, data)]);
    this.delivery.poke();
  }

  /** Counts a membership here; the store hears of the first and the last. Resolves once it has. */
  private count(kind: MemberKind, name: string, delta: 1 | -1): Promise<void> {
    const map = this.local[kind];
    const before = map.get(name) ?? 0;
    const after = Math.max(0, before + delta);
    if (after === 0) map.delete(name);
    else map.set(name, after);
    if (before === 0 && after === 1) return this.chain(kind, name, (now) => this.store.add(kind, name, this.node, now));
    if (before === 1 && after === 0) return this.chain(kind, name, (now) => this.store.remove(kind, name, this.node, now));
    return this.chains.get(`${kind}\n${name}`) ?? Promise.resolve();
  }

  private chain(kind: MemberKind, name: string, step: (now: number) => Promise<void>): Promise<void> {
    const key = `${kind}\n${name}`;
    const next = (this.chains.get(key) ?? Promise.resolve())
      .then(() => step(Date.now()))
      .then(() => this.delivery.poke())
      .catch((err: unknown) => this.logger.warn({ err, kind, name }, 'webhook state update failed'))
      .finally(() => {
        if (this.chains.get(key) === next) this.chains.delete(key);
      });
    this.chains.set(key, next);
    return next;
  }

  private async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      await this.store.sweep(this.node, Date.now(), this.options.sweepIntervalMs * 3, this.options.graceMs);
      this.delivery.poke();
    } catch (err) {
      this.logger.warn({ err }, 'webhook sweep failed');
    } finally {
      this.sweeping = false;
    }
  }
}
