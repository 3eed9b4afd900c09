import { z } from 'zod';
import { authSchema } from './auth-options.js';
import { proxySchema, webhooksSchema, type ProxyEndpoint, type WebhookEventType } from './backend-options.js';
import { collabSchema } from './collab-options.js';
import { limitsSchema } from './limits-options.js';
import { namespaceSchema } from './namespace-options.js';
import { positiveInt } from './option-primitives.js';
import { postgresSchema } from './postgres-options.js';
import { HOST_PORT, redisClusterSchema } from './redis-cluster-options.js';

export { namespaceSchema };
export type { ProxyEndpoint, WebhookEventType };

/**
 * Every Switchboard option in one strict schema: unknown keys are rejected, defaults are
 * filled in, and the result is frozen. docs/operations.md lists each option and its default.
 */
export const hubOptionsSchema = z
  .object({
    /** Port for `hub.listen()` when none is passed. */
    port: z.number().int().min(0).max(65_535).default(7070),
    /** Interface to bind; all interfaces when omitted. */
    host: z.string().optional(),
    /** WebSocket endpoint path. */
    path: z.string().startsWith('/').default('/ws'),
    /** Directory of the embedded SQLite file; omitted or null keeps everything in memory. */
    dataDir: z.string().min(1).nullable().default(null),
    auth: authSchema.prefault({}),
    /**
     * Redis URL: switches from the embedded broker to Redis, so several nodes form one system.
     * Omitted or null: the embedded default.
     */
    redisUrl: z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
      .nullable()
      .default(null),
    /**
     * Redis Cluster seed nodes (`host:port`): the broker, presence, stores and listings run on the
     * cluster, each channel on the shard of its hash slot, delivery by sharded pub/sub (Redis 7).
     * Instead of `redisUrl`. Either the seeds, or `{ seeds, username?, password?, tls? }`
     * (redis-cluster-options.ts). Omitted or null: no cluster.
     */
    redisCluster: redisClusterSchema.nullable().default(null),
    /**
     * Redis through Sentinel: the sentinels (`host:port`) and the master group's name; ioredis asks
     * them for the current master at every (re)connect, so a failover is followed. Instead of `redisUrl`.
     */
    redisSentinel: z
      .object({
        sentinels: z.array(z.string().regex(HOST_PORT, 'must be host:port')).min(1),
        name: z.string().min(1),
        password: z.string().optional(),
        sentinelPassword: z.string().optional(),
      })
      .strict()
      .nullable()
      .default(null),
    /**
     * With Redis: the most any one Redis call (publish, history, subscribe, presence, store, the
     * first connect) may take; past it the call fails with error 114 (temporary), so a stalled
     * Redis never hangs clients, readiness or shutdown.
     */
    redisCommandTimeoutMs: positiveInt.min(10).max(60_000).default(2_000),
    /**
     * With a broker whose delivery may lose messages (Redis), how often each node compares its
     * subscribers' positions with the stream tops to find losses no later publication reveals.
     */
    positionCheckIntervalMs: positiveInt.default(5_000),
    /** With Redis, how often each node publishes its channel counts for `/api/channels`. */
    statsIntervalMs: positiveInt.default(5_000),
    /** A presence entry (or online connection) not refreshed for this long is gone: its node died. */
    presenceTtlSeconds: positiveInt.max(3600).default(60),
    /** Read positions and user statuses not written for this long are deleted (default 90 days). */
    storeRetentionSeconds: positiveInt.max(10 * 365 * 86_400).default(90 * 86_400),
    /** Prefix of every Redis key and channel, so deployments can share one Redis. */
    redisPrefix: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/)
      .default('switchboard'),
    /** Key for the HTTP server API (`Authorization: apikey KEY`); the API is off without one. */
    apiKey: z.string().min(16, 'must be at least 16 characters').optional(),
    /** Origins allowed to open a WebSocket. Empty: same origin only. `*`: any. */
    allowedOrigins: z.array(z.string()).default([]),
    /**
     * Host names trusted for same-origin requests, beyond IP literals and `localhost`/`*.localhost`
     * (always trusted): `chat.example.com` (exactly), `.example.com` (it and every subdomain), or
     * `*` (any Host: only behind a proxy that checks it). A same-origin request with another Host
     * is refused (DNS rebinding); origins on `allowedOrigins` pass whatever the Host.
     */
    allowedHosts: z
      .array(
        z
          .string()
          .regex(
            /^(\*|\.?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)$/,
            'a host name without scheme or port (chat.example.com), .example.com for it and its subdomains, or *',
          ),
      )
      .default([]),
    /** Whether a handshake without an Origin header (non-browser clients) is accepted. */
    allowMissingOrigin: z.boolean().default(true),
    /** Options of channels without a namespace. */
    defaultNamespace: namespaceSchema.prefault({}),
    /** Options per namespace (`chat` for `chat:*` channels). */
    namespaces: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'namespace names use A-Z a-z 0-9 _ . -'), namespaceSchema).default({}),
    limits: limitsSchema.prefault({}),
    sse: z
      .object({
        /** Path of the Server-Sent Events endpoint. */
        path: z.string().startsWith('/').default('/sse'),
        /** Interval of keep-alive comments. */
        keepAliveMs: positiveInt.default(15_000),
        /** Reconnect delay suggested to the browser (`retry:`). */
        retryMs: positiveInt.default(2_000),
        /** Cookie that may carry the token (in addition to the Authorization header and `token` query). */
        cookieName: z.string().min(1).optional(),
        /** Send `Access-Control-Allow-Credentials: true` to allowed cross-origin requests. */
        credentials: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    /**
     * A second listener for operations: metrics (then served only there) and health. Null: none,
     * and metrics are served on the main port.
     */
    adminPort: z.number().int().min(0).max(65_535).nullable().default(null),
    /** Interface of the admin listener; loopback by default, so metrics stay private. */
    adminHost: z.string().default('127.0.0.1'),
    /** Path of the Prometheus metrics; null serves none. Keep it off the public internet (a proxy rule). */
    metricsPath: z.string().startsWith('/').nullable().default('/metrics'),
    /** Serve the demo pages and client bundle from this directory; null serves none. */
    webDir: z.string().nullable().default(null),
    /** PostgreSQL: the transactional outbox consumer, and the store when `store` is "postgres". */
    postgres: postgresSchema.prefault({}),
    /**
     * Where read positions, user statuses and notification history live: `auto` follows the broker
     * (Redis, SQLite under dataDir, or memory); `postgres` keeps them in `postgres.url`.
     */
    store: z.enum(['auto', 'postgres']).default('auto'),
    /** Collaborative documents (namespaces with `document: true`; docs/collab.md). */
    collab: collabSchema.prefault({}),
    /** Proxy hooks: connect, refresh, subscribe, publish and RPC forwarded to a backend over HTTP (docs/backend.md). */
    proxy: proxySchema.optional(),
    /** Webhooks: events POSTed to a backend, at least once, in order (docs/backend.md). */
    webhooks: webhooksSchema.optional(),
    /**
     * The admin web UI at /admin (on the admin listener when `adminPort` is set): logging in takes
     * the API key or this password. Without either, /admin serves only its login page.
     */
    adminPassword: z.string().min(12, 'must be at least 12 characters').optional(),
    /** How long an admin session (its cookie) lasts after login. */
    adminSessionTtlSeconds: positiveInt.max(7 * 86_400).default(8 * 3600),
  })
  .strict()
  .superRefine((o, ctx) => {
    const a = o.auth;
    if (a.secret === undefined && a.publicKey === undefined && a.jwksUrl === undefined && !a.allowAnonymous && !o.proxy?.connect) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth'],
        message: 'set auth.secret, auth.publicKey or auth.jwksUrl, auth.allowAnonymous: true, or proxy.connect',
      });
    }
    if (o.sse.credentials && o.allowedOrigins.includes('*')) {
      ctx.addIssue({
        code: 'custom',
        path: ['sse', 'credentials'],
        message: 'cannot be true while allowedOrigins has "*" (no wildcard with credentials)',
      });
    }
    if (o.sse.path === o.path) {
      ctx.addIssue({ code: 'custom', path: ['sse', 'path'], message: 'must differ from path' });
    }
    if (o.store === 'postgres' && o.postgres.url === null) {
      ctx.addIssue({ code: 'custom', path: ['store'], message: '"postgres" needs postgres.url (or --postgres / SWITCHBOARD_POSTGRES_URL)' });
    }
    const redisTargets = (['redisUrl', 'redisCluster', 'redisSentinel'] as const).filter((k) => o[k] !== null);
    if (redisTargets.length > 1) {
      ctx.addIssue({ code: 'custom', path: [redisTargets[1]!], message: `cannot be set together with ${redisTargets[0]} (choose one Redis)` });
    }
    if (o.collab.path === o.path || o.collab.path === o.sse.path) {
      ctx.addIssue({ code: 'custom', path: ['collab', 'path'], message: 'must differ from path and sse.path' });
    }
    if (o.collab.maxDocumentBytes < o.collab.maxUpdateBytes) {
      ctx.addIssue({ code: 'custom', path: ['collab', 'maxDocumentBytes'], message: 'must be at least collab.maxUpdateBytes' });
    }
    if (o.limits.pongTimeoutMs >= o.limits.pingIntervalMs) {
      ctx.addIssue({ code: 'custom', path: ['limits', 'pongTimeoutMs'], message: 'must be less than limits.pingIntervalMs' });
    }
  });

/**
 * Namespaces every hub has, unless the configuration gives them its own options:
 * `notifications:#<user>` holds each user's notifications (with history, for unread counts and
 * paging), and `status:<user>` carries user status changes (ephemeral).
 */
const BUILT_IN_NAMESPACES = {
  notifications: {
    history: { size: 1000, ttlSeconds: 30 * 86_400, metaTtlSeconds: 365 * 86_400 },
    clientPublish: 'none',
    proxy: { subscribe: null, publish: null },
  },
  status: { history: { size: 0 }, recover: false, clientPublish: 'none', proxy: { subscribe: null, publish: null } },
} as const;

/** The built-in notifications namespace when they live in PostgreSQL (`store: "postgres"`): a long-lived inbox. */
const DURABLE_NOTIFICATIONS = {
  history: { size: 10_000, ttlSeconds: 365 * 86_400, metaTtlSeconds: 2 * 365 * 86_400 },
  clientPublish: 'none',
} as const;

export type HubOptionsInput = z.input<typeof hubOptionsSchema>;
export type HubOptions = Readonly<z.output<typeof hubOptionsSchema>>;
export type NamespaceOptions = Readonly<z.output<typeof namespaceSchema>>;
export type Limits = HubOptions['limits'];
export type ProxyOptions = NonNullable<HubOptions['proxy']>;
export type WebhookOptions = NonNullable<HubOptions['webhooks']>;

/** Thrown for bad options; the message names every bad field. */
export class OptionsError extends TypeError {
  constructor(readonly issues: string[]) {
    super(`invalid switchboard options: ${issues.join('; ')}`);
    this.name = 'OptionsError';
  }
}

/** Validates once at startup, fills defaults and returns a deeply frozen copy. */
export function resolveOptions(input: unknown): HubOptions {
  const parsed = hubOptionsSchema.safeParse(input ?? {});
  if (!parsed.success) {
    throw new OptionsError(parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`));
  }
  for (const [name, defaults] of Object.entries(BUILT_IN_NAMESPACES)) {
    const durable = name === 'notifications' && parsed.data.store === 'postgres';
    parsed.data.namespaces[name] ??= namespaceSchema.parse(durable ? DURABLE_NOTIFICATIONS : defaults);
  }
  return deepFreeze(parsed.data);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
