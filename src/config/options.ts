import { z } from 'zod';

/**
 * Every Switchboard option in one strict schema: unknown keys are rejected, defaults are
 * filled in, and the result is frozen. docs/operations.md lists each option and its default.
 */
const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

const rateSchema = z
  .object({
    /** Tokens added per second. */
    perSecond: z.number().positive(),
    /** Bucket size: how many may be spent at once. */
    burst: positiveInt,
  })
  .strict();

/** One proxy endpoint: where a kind of client request is forwarded to the backend (docs/backend.md). */
const proxyEndpointSchema = z
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
const namespaceProxySchema = z
  .object({ subscribe: proxyEndpointSchema.nullable().optional(), publish: proxyEndpointSchema.nullable().optional() })
  .strict();

export const namespaceSchema = z
  .object({
    history: z
      .object({
        /** Publications kept per channel; 0 turns history (and offsets) off. */
        size: nonNegativeInt.default(100),
        /** Seconds a publication stays in history. */
        ttlSeconds: positiveInt.default(600),
        /** Seconds a channel's position (offset, epoch) outlives its last publication. */
        metaTtlSeconds: positiveInt.default(86_400),
      })
      .strict()
      .prefault({}),
    /** Whether subscribe may recover missed publications from history. */
    recover: z.boolean().default(true),
    /** Whether the channel keeps a presence set. */
    presence: z.boolean().default(false),
    /** Whether subscribers get join/leave pushes (needs presence). */
    joinLeave: z.boolean().default(false),
    /** Whether subscribers may send typing signals (ephemeral, throttled, never stored). */
    typing: z.boolean().default(false),
    /** Whether marking a channel read pushes a `read` event to its subscribers. */
    readReceipts: z.boolean().default(false),
    /** Who may publish from a client connection. */
    clientPublish: z.enum(['none', 'subscribers', 'any']).default('subscribers'),
    /**
     * Who may subscribe: `authenticated` (any connected user), or `claim` (only connections whose
     * JWT `channels` claim lists the channel or a matching `namespace:*` pattern).
     */
    subscribe: z.enum(['authenticated', 'claim']).default('authenticated'),
    /**
     * Whether the namespace's channels are Yjs documents (docs/collab.md), served at
     * `collab.path/<channel>`. Subscribers read them; publishers (clientPublish) edit them.
     */
    document: z.boolean().default(false),
    /** Proxy endpoints of this namespace, overriding the global `proxy.subscribe` / `proxy.publish`. */
    proxy: namespaceProxySchema.optional(),
    /** Webhook events of this namespace: `publication` sends every client publication. */
    webhooks: z.object({ publication: z.boolean().default(false) }).strict().prefault({}),
    /**
     * `all`: every publication reaches every subscriber (a slow one is disconnected at the queue
     * cap). `latest` (latest-value channels): a subscriber past half its queue cap keeps only
     * the newest publication per channel, or per publisher-given `key`, and is never
     * disconnected for them; a subscribe gets the latest publication per key instead of a replay.
     */
    delivery: z.enum(['all', 'latest']).default('all'),
    /**
     * Whether subscribers may send ephemeral client events (`emit`: no history, no offset, no
     * reply; at most once, latest wins; limits.clientEventRate per connection).
     */
    clientEvents: z.boolean().default(false),
  })
  .strict()
  .superRefine((ns, ctx) => {
    if (ns.joinLeave && !ns.presence) {
      ctx.addIssue({ code: 'custom', path: ['joinLeave'], message: 'joinLeave needs presence: true' });
    }
    if (ns.history.metaTtlSeconds < ns.history.ttlSeconds) {
      ctx.addIssue({ code: 'custom', path: ['history', 'metaTtlSeconds'], message: 'must be at least history.ttlSeconds' });
    }
  });

const authSchema = z
  .object({
    /** HS256 secret (at least 32 bytes). */
    secret: z.string().min(32, 'must be at least 32 characters').optional(),
    /** PEM SPKI public key for RS256/ES256 tokens. */
    publicKey: z.string().optional(),
    /** JWKS URL for RS256/ES256 tokens. */
    jwksUrl: z.url().optional(),
    /** Accepted algorithms; defaults follow the key kind (HS256, or RS256 + ES256). */
    algorithms: z
      .array(z.enum(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'PS256']))
      .min(1)
      .optional(),
    audience: z.union([z.string(), z.array(z.string())]).optional(),
    issuer: z.union([z.string(), z.array(z.string())]).optional(),
    /** Seconds of clock skew tolerated on exp/nbf. */
    clockToleranceSeconds: nonNegativeInt.default(0),
    /** Whether connections without a token are accepted (as user ''). */
    allowAnonymous: z.boolean().default(false),
  })
  .strict()
  .superRefine((auth, ctx) => {
    const keys = [auth.secret, auth.publicKey, auth.jwksUrl].filter((k) => k !== undefined).length;
    if (keys > 1) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'set only one of auth.secret, auth.publicKey, auth.jwksUrl' });
    const hmac = auth.algorithms?.some((a) => a.startsWith('HS'));
    const asym = auth.algorithms?.some((a) => !a.startsWith('HS'));
    if (auth.secret !== undefined && asym) {
      ctx.addIssue({ code: 'custom', path: ['algorithms'], message: 'auth.secret takes only HS* algorithms' });
    }
    if ((auth.publicKey !== undefined || auth.jwksUrl !== undefined) && hmac) {
      ctx.addIssue({ code: 'custom', path: ['algorithms'], message: 'auth.publicKey/jwksUrl take only RS*/ES*/PS* algorithms' });
    }
  });

const limitsSchema = z
  .object({
    /** Largest inbound WebSocket message in bytes (ws maxPayload); larger closes with 1009. */
    maxMessageBytes: positiveInt.default(64 * 1024),
    /**
     * Outbound bytes a connection may have queued. Above it for longer than `slowConsumerMs`, or
     * above 4 × it at any moment, the connection is closed as a slow consumer (4001). Replies
     * (recovery, history) are paged to a quarter of it.
     */
    maxQueueBytes: positiveInt.default(1024 * 1024),
    /** How long a connection's queue may stay above maxQueueBytes before it is dropped. */
    slowConsumerMs: positiveInt.default(5_000),
    /** Bytes of publication data one connection may publish (bytes per second, burst in bytes). */
    publishBytesRate: rateSchema.default({ perSecond: 512 * 1024, burst: 1024 * 1024 }),
    /** Bytes of client publication data one channel takes on this node (bytes per second, burst). */
    channelPublishBytesRate: rateSchema.default({ perSecond: 2 * 1024 * 1024, burst: 4 * 1024 * 1024 }),
    /** Longest an application hook or RPC handler may take before the command fails with 115. */
    hookTimeoutMs: positiveInt.default(10_000),
    pingIntervalMs: positiveInt.default(25_000),
    pongTimeoutMs: positiveInt.default(10_000),
    /** Time a connection has to send `connect` before it is closed. */
    connectTimeoutMs: positiveInt.default(15_000),
    maxChannelsPerConnection: positiveInt.default(128),
    maxConnections: positiveInt.default(100_000),
    maxConnectionsPerUser: positiveInt.default(100),
    /** New connections per client IP. */
    connectionRatePerIp: rateSchema.default({ perSecond: 20, burst: 50 }),
    /** Client publish, RPC and other commands per connection. */
    commandRate: rateSchema.default({ perSecond: 100, burst: 200 }),
    /**
     * How deep client JSON (a command line, an HTTP API body) may nest arrays and objects; deeper
     * is refused with 107 before it is parsed. At most 1000: deeper values overflow the stack
     * when re-encoded.
     */
    maxJsonDepth: positiveInt.max(1000).default(64),
    /** Rejected commands in a row (rate or malformed) before the connection is closed. */
    maxViolations: positiveInt.default(50),
    /** Most publications one subscribe may recover. */
    recoveryMaxPublications: positiveInt.default(300),
    /** Ephemeral client events (`emit`) per connection; past it they are dropped. */
    clientEventRate: rateSchema.default({ perSecond: 60, burst: 120 }),
    /**
     * Most pending latest-value entries (latest-value publications and client events waiting for
     * a slow connection's socket to drain) per connection; past it new keys are dropped.
     */
    maxLatestEntries: positiveInt.default(4096),
    /** Typing signals forwarded per user per channel: at most one per this many ms. */
    typingThrottleMs: positiveInt.default(1_000),
    /** A typing indicator not refreshed for this long clears by itself. */
    typingExpireMs: positiveInt.default(5_000),
    /** Most publications one history call returns. */
    historyMaxLimit: positiveInt.default(1000),
    idempotencyWindowMs: positiveInt.default(120_000),
    /** Time the HTTP server waits for complete request headers (slowloris guard). */
    headersTimeoutMs: positiveInt.default(10_000),
    /** Graceful shutdown: closes are spread over this many ms… */
    shutdownSpreadMs: nonNegativeInt.default(2_000),
    /** …and everything is closed after this many. */
    shutdownTimeoutMs: positiveInt.default(30_000),
  })
  .strict()
  .superRefine((l, ctx) => {
    if (l.maxQueueBytes < 2 * l.maxMessageBytes + 4096) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxQueueBytes'],
        message: `must be at least 2 × limits.maxMessageBytes + 4096 (${2 * l.maxMessageBytes + 4096})`,
      });
    }
    if (l.publishBytesRate.burst < l.maxMessageBytes) {
      ctx.addIssue({ code: 'custom', path: ['publishBytesRate', 'burst'], message: 'must be at least limits.maxMessageBytes' });
    }
    if (l.channelPublishBytesRate.burst < l.maxMessageBytes) {
      ctx.addIssue({ code: 'custom', path: ['channelPublishBytesRate', 'burst'], message: 'must be at least limits.maxMessageBytes' });
    }
    if (l.shutdownSpreadMs >= l.shutdownTimeoutMs) {
      ctx.addIssue({ code: 'custom', path: ['shutdownSpreadMs'], message: 'must be less than limits.shutdownTimeoutMs' });
    }
  });

/** A PostgreSQL identifier Switchboard puts into SQL (schema, table): plain lowercase words only. */
const sqlIdentifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lowercase SQL identifier (a-z, 0-9, _; at most 63)');

const postgresSchema = z
  .object({
    /** postgres:// URL; null: no PostgreSQL (no outbox, no PostgreSQL store). */
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .nullable()
      .default(null),
    /** Schema of every table and function Switchboard creates (tests use one each). */
    schema: sqlIdentifier.default('public'),
    outbox: z
      .object({
        /** Whether this node consumes the outbox table (several nodes may). */
        enabled: z.boolean().default(true),
        /** The table the application inserts into (in `postgres.schema`). */
        table: sqlIdentifier.default('switchboard_outbox'),
        /** Rows claimed per transaction. */
        batchSize: positiveInt.max(10_000).default(100),
        /** Polling fallback: the table is read this often even without a NOTIFY. */
        pollIntervalMs: positiveInt.default(1_000),
      })
      .strict()
      .prefault({}),
    /** The most any one PostgreSQL statement may take (statement_timeout and the client bound); past it: error 114. */
    queryTimeoutMs: positiveInt.min(10).max(600_000).default(5_000),
    /** The most opening a connection may take. */
    connectTimeoutMs: positiveInt.min(10).max(60_000).default(5_000),
    /** Connections in the pool (the outbox listener holds one more). */
    poolSize: positiveInt.max(1_000).default(10),
  })
  .strict();

/** `host:port` of a Redis node or sentinel (a host name, IPv4, or a bracketed IPv6 address). */
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/;
const proxySchema = z
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

const webhookEvents = ['channel.occupied', 'channel.vacated', 'presence.join', 'presence.leave', 'user.online', 'user.offline', 'publication'] as const;

const webhooksSchema = z
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
     * Instead of `redisUrl`. Omitted or null: no cluster.
     */
    redisCluster: z.array(z.string().regex(HOST_PORT, 'must be host:port')).min(1).nullable().default(null),
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
    collab: z
      .object({
        /** Path prefix of the y-websocket-compatible endpoint: `<path>/<channel>`. */
        path: z.string().startsWith('/').default('/collab'),
        /** Largest single update (and WebSocket message) in bytes; larger is refused with 121. */
        maxUpdateBytes: positiveInt.default(1024 * 1024),
        /** Largest stored document (snapshot + log) in bytes; an update past it is refused with 121. */
        maxDocumentBytes: positiveInt.default(32 * 1024 * 1024),
        /** Documents open (in memory) on one node; one more is refused with 122 (temporary). */
        maxOpenDocuments: positiveInt.default(10_000),
        /** A document nobody has open stays in memory this long, then is unloaded. */
        idleUnloadMs: positiveInt.default(30_000),
        /** The update log is compacted into the snapshot after this many updates… */
        compactAfterUpdates: positiveInt.default(500),
        /** …or this long after the last update (debounced). */
        compactDelayMs: positiveInt.default(2_000),
        /** With Redis: how often each node compares its open documents with the stored head (repairs lost deliveries). */
        resyncIntervalMs: positiveInt.default(5_000),
        /** Longest a document load may take; past it the open fails with 123 (temporary) and nothing is created. */
        loadTimeoutMs: positiveInt.default(10_000),
      })
      .strict()
      .prefault({}),
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
export type ProxyEndpoint = z.output<typeof proxyEndpointSchema>;
export type WebhookOptions = NonNullable<HubOptions['webhooks']>;
export type WebhookEventType = (typeof webhookEvents)[number];

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
