import { randomUUID } from 'node:crypto';
import type { WebhookEventType } from '../config/options.js';

/** One webhook event (docs/backend.md): `id` is unique, so a receiver dedupes redeliveries on it. */
export interface WebhookEvent {
  id: string;
  type: WebhookEventType;
  /** Unix ms when it happened. */
  timestamp: number;
  data: Record<string, unknown>;
}

/** An event set aside after its retries ran out (GET /api/webhooks/failed). */
export interface FailedWebhookEvent {
  event: WebhookEvent;
  /** Why the last attempt failed. */
  error: string;
  /** Unix ms when it was set aside. */
  failedAt: number;
}

export function newEvent(type: WebhookEventType, data: Record<string, unknown>, now = Date.now()): WebhookEvent {
  return { id: `evt_${randomUUID()}`, type, timestamp: now, data };
}

/** What a membership is of: a user's connections (`u`) or a channel's subscribers (`c`). */
export type MemberKind = 'u' | 'c';

/**
 * Where webhook state lives: the queue of undelivered events, the events set aside, and who is
 * online / which channels are occupied, per node, so events are counted across nodes.
 * State changes and the events they cause are written in one atomic step.
 */
export interface WebhookStore {
  /** This node's first connection of a user / subscriber of a channel: may queue user.online / channel.occupied. */
  add(kind: MemberKind, name: string, node: string, now: number): Promise<void>;
  /** This node's last one closed: may queue channel.vacated, or start a user's grace period. */
  remove(kind: MemberKind, name: string, node: string, now: number): Promise<void>;
  /**
   * Renews this node's lease (`leaseMs`); ends the memberships of nodes whose lease ran out (a
   * crash); queues user.offline for users gone for `graceMs` — each departure claimed by one node.
   */
  sweep(node: string, now: number, leaseMs: number, graceMs: number): Promise<void>;
  enqueue(events: readonly WebhookEvent[]): Promise<void>;
  /**
   * The oldest `max` queued events (as JSON text), for this node to deliver under the delivery
   * lease (`leaseMs`); undefined while another node holds it.
   */
  head(node: string, max: number, leaseMs: number): Promise<string[] | undefined>;
  /** Removes the first `count` queued events (delivered), if this node still holds the lease. */
  ack(node: string, count: number): Promise<void>;
  /** Moves the first `count` queued events to the failed list. */
  setAside(node: string, count: number, error: string, now: number): Promise<void>;
  failed(limit: number): Promise<FailedWebhookEvent[]>;
  /** Queues failed events again (all, or those with the given ids); resolves with how many. */
  retry(ids: readonly string[] | undefined): Promise<number>;
  /** How many events wait in the queue, and how many were set aside as failed (across nodes). */
  status(): Promise<WebhookQueueStatus>;
}

export interface WebhookQueueStatus {
  queued: number;
  failed: number;
}
