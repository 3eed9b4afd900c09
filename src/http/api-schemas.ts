import { z } from 'zod';

// The request and response schemas of the HTTP API (docs/http-api.md): validation and the OpenAPI document.

/** Most channels one broadcast may name. */
export const MAX_BROADCAST_CHANNELS = 100;
/** Body headroom a broadcast gets over `limits.maxMessageBytes` for its channel list. */
export const BROADCAST_LIST_BYTES = MAX_BROADCAST_CHANNELS * 260;

// ---- schemas: they validate requests and, through openapi.ts, document them ----------------

export const channel = z.string().min(1).max(255).describe('channel name, `namespace:rest` (docs/protocol.md, "Channels")');
export const user = z.string().min(1).max(1024).describe('user id (the JWT `sub`)');
export const data = z
  .unknown()
  .refine((v) => v !== undefined, 'required')
  .describe('any JSON value');
export const idempotencyKey = z
  .string()
  .min(1)
  .max(128)
  .describe('a retry with the same key (per channel) within limits.idempotencyWindowMs returns the first result and publishes nothing');
export const digits = (max: number, what: string) =>
  z
    .string()
    .regex(new RegExp(`^\\d{1,${max}}$`), `must be ${what}`)
    .transform(Number);

export const publishBody = z.object({ channel, data, idempotencyKey: idempotencyKey.optional() }).strict();

export const broadcastBody = z
  .object({
    channels: z
      .array(channel)
      .min(1)
      .max(MAX_BROADCAST_CHANNELS)
      .superRefine((list, ctx) => {
        const seen = new Set<string>();
        list.forEach((name, i) => {
          if (seen.has(name)) ctx.addIssue({ code: 'custom', path: [i], message: `duplicate channel ${name}` });
          seen.add(name);
        });
      })
      .describe(`1 to ${MAX_BROADCAST_CHANNELS} distinct channels`),
    data,
    idempotencyKey: idempotencyKey.optional(),
  })
  .strict();

export const historyQuery = z
  .object({
    channel,
    since: digits(15, 'a non-negative integer offset').optional().describe('return the publications after this offset (needs `epoch`)'),
    epoch: z.string().min(1).max(64).optional().describe('epoch of `since`; must be the stream’s current epoch'),
    limit: digits(7, 'a non-negative integer')
      .optional()
      .describe('at most this many publications (default and maximum: limits.historyMaxLimit); 0 returns only the position'),
  })
  .strict()
  .superRefine((q, ctx) => {
    if (q.since !== undefined && q.epoch === undefined) ctx.addIssue({ code: 'custom', path: ['epoch'], message: 'required with since' });
    if (q.epoch !== undefined && q.since === undefined) ctx.addIssue({ code: 'custom', path: ['since'], message: 'required with epoch' });
  });

export const presenceQuery = z.object({ channel }).strict();

export const notifyBody = z.object({ user, data, idempotencyKey: idempotencyKey.optional() }).strict();

/** `?user=a&user=b`: repeated on purpose, so it is read with getAll, not queryObject. */
export const statusQuery = z.object({ user: z.array(user).min(1).max(100).describe('1 to 100 user ids; repeat the parameter') }).strict();
export const noQuery = z.object({}).strict();

export const disconnectBody = z
  .object({ user, reason: z.string().max(200).optional().describe('sent to the client in the disconnect push') })
  .strict();

export const unsubscribeBody = z.object({ user, channel }).strict();

export const webhooksFailedQuery = z
  .object({
    limit: digits(4, 'an integer from 1 to 1000').optional().describe('at most this many, oldest first (default 100, at most 1000)'),
  })
  .strict();
export const webhooksRetryBody = z
  .object({
    ids: z.array(z.string().min(1).max(200)).min(1).max(1000).optional().describe('event ids to queue again; omitted: every failed event'),
  })
  .strict();

export const count = z.number().int().nonnegative();
export const position = z.object({ offset: count, epoch: z.string() });
export const clientInfo = z.object({ user: z.string(), client: z.string(), key: z.string().optional().describe('the conflation key (latest-value namespaces)') });
export const wireError = z.object({ code: z.number().int(), message: z.string(), temporary: z.boolean().optional() });
export const empty = z.object({}).strict();

export const responses = {
  publish: position,
  broadcast: z.object({
    results: z
      .array(z.union([z.object({ channel: z.string() }).extend(position.shape), z.object({ channel: z.string(), error: wireError })]))
      .describe('one result per channel, in request order'),
  }),
  history: z.object({
    position: position.describe('the stream top'),
    publications: z.array(z.object({ offset: count, data: z.unknown(), info: clientInfo.optional() })).describe('oldest first'),
    latest: z.literal(true).optional().describe('a latest-value namespace: the newest publication of each key'),
  }),
  presence: z.object({
    clients: z
      .record(z.string(), clientInfo.extend({ connInfo: z.unknown().optional(), chanInfo: z.unknown().optional() }))
      .describe('by client id'),
    users: z.array(z.string()).describe('each present user once, sorted'),
  }),
  status: z.object({
    users: z
      .record(z.string(), z.object({ status: z.enum(['online', 'away', 'busy', 'offline']), lastSeen: count.describe('unix ms') }))
      .describe('by user id'),
  }),
  channels: z.object({
    channels: z.array(z.object({ channel: z.string(), subscribers: count })).describe('sorted by name'),
  }),
  info: z.object({
    version: z.string(),
    protocol: z.number().int(),
    uptimeSeconds: count,
    connections: count,
    channels: count.describe('channels with at least one subscriber on this node'),
    nodes: count.describe('live nodes sharing this hub’s Redis (1 without Redis)'),
  }),
  webhooksFailed: z.object({
    events: z
      .array(z.object({ event: z.looseObject({ id: z.string(), type: z.string(), timestamp: count }), error: z.string(), failedAt: count }))
      .describe('events whose retries ran out, oldest first'),
  }),
  webhooksRetry: z.object({ queued: count.describe('events queued again (delivered after those already queued)') }),
  openapi: z.looseObject({}).describe('this document'),
} as const;
