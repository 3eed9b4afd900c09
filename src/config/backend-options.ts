import { z } from 'zod';
import { nonNegativeInt, positiveInt } from './option-primitives.js';

/** One proxy endpoint: where a kind of client request is forwarded to the backend (docs/backend.md). */
export const proxyEndpointSchema = z
  .object({
    url: z.url().refine((u) => /^https?:\/\//.test(u), 'must be an http:// or https:// URL'),
    /** Longest the backend may take; past it the request fails with 114 (temporary). */
    timeoutMs: positiveInt.max(60_000).default(5_000),
    /** Handshake headers passed on to the backend (lower case). */
    forwardHeaders: z.array(z.string().regex(/^[a-z0-9-]+$/, 'header names in lower case')).default(['cookie', 'authorization']),
    /** Static headers sent with every request. */
    headers: z.record(z.string(), z.string()).default({}),
  })
  .strict();

/** Per namespace: its own subscribe/publish endpoints, or null to turn the global one off there. */
export const namespaceProxySchema = z
  .object({ subscribe: proxyEndpointSchema.nullable().optional(), publish: proxyEndpointSchema.nullable().optional() })
  .strict();

/** Proxy hooks: connect, refresh, subscribe, publish and RPC forwarded to a backend over HTTP (docs/backend.md). */
export const proxySchema = z
  .object({
    /** Key of the `X-Switchboard-Signature` HMAC-SHA256 of every proxy request body. */
    secret: z.string().min(16, 'must be at least 16 characters'),
    /** Connections to authenticate through the backend: those without a token, or all. */
    connectMode: z.enum(['withoutToken', 'always']).default('withoutToken'),
    connect: proxyEndpointSchema.optional(),
    refresh: proxyEndpointSchema.optional(),
    subscribe: proxyEndpointSchema.optional(),
    publish: proxyEndpointSchema.optional(),
    rpc: proxyEndpointSchema.optional(),
    /** Proxy requests one connection may have in flight; more fail with 111 (temporary). */
    maxInFlightPerConnection: positiveInt.default(8),
    /** Proxy requests this node may have in flight; more fail with 114 (temporary). */
    maxInFlight: positiveInt.default(1_000),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.refresh && !p.connect) ctx.addIssue({ code: 'custom', path: ['refresh'], message: 'needs proxy.connect' });
  });

export const webhookEvents = ['channel.occupied', 'channel.vacated', 'presence.join', 'presence.leave', 'user.online', 'user.offline', 'publication'] as const;

export const webhooksSchema = z
  .object({
    url: z.url().refine((u) => /^https?:\/\//.test(u), 'must be an http:// or https:// URL'),
    /** Key of the `X-Switchboard-Signature` HMAC-SHA256 of every webhook body. */
    secret: z.string().min(16, 'must be at least 16 characters'),
    /** Events to send; `publication` also needs the namespace's `webhooks.publication`. */
    events: z.array(z.enum(webhookEvents)).min(1).default([...webhookEvents]),
    /** How long a user stays online after their last connection closed (reloads, short drops). */
    graceMs: nonNegativeInt.max(3_600_000).default(10_000),
    /** Longest one webhook POST may take. */
    timeoutMs: positiveInt.max(60_000).default(5_000),
    /** Most events in one POST. */
    batchSize: positiveInt.max(1_000).default(100),
    /** Backoff after the first failed delivery; doubled per attempt up to maxBackoffMs. */
    initialBackoffMs: positiveInt.default(500),
    maxBackoffMs: positiveInt.default(30_000),
    /** How long an event is retried before it is set aside as failed (GET /api/webhooks/failed). */
    retryForMs: positiveInt.default(3_600_000),
    /** How often departures are swept; a crashed node's lease lasts 3 × this. */
    sweepIntervalMs: positiveInt.min(50).max(60_000).default(1_000),
    /** Static headers sent with every POST. */
    headers: z.record(z.string(), z.string()).default({}),
  })
  .strict()
  .superRefine((w, ctx) => {
    if (w.maxBackoffMs < w.initialBackoffMs) ctx.addIssue({ code: 'custom', path: ['maxBackoffMs'], message: 'must be at least webhooks.initialBackoffMs' });
  });

export type ProxyEndpoint = z.output<typeof proxyEndpointSchema>;
export type WebhookEventType = (typeof webhookEvents)[number];
