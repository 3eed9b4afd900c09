import { z } from 'zod';
import { nonNegativeInt, positiveInt, rateSchema } from './option-primitives.js';

/** Per-connection and per-node limits: sizes, rates, timeouts and queue caps. */
export const limitsSchema = z
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
