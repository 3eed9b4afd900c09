import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { StreamPosition } from '../stream/types.js';
import type { Node } from '../hub/node.js';
import { isLatestValue, latestPerKey } from '../hub/latest.js';
import { PROTOCOL_VERSION } from '../protocol/commands.js';
import { HubError, toWireError } from '../protocol/errors.js';
import { encodePublication } from '../protocol/pushes.js';
import { buildOpenApiDocument, type RouteDoc } from './openapi.js';
import { packageVersion } from './package-files.js';
import type { ChannelDirectory } from '../stats/channel-directory.js';
import { presenceUsers } from '../presence/presence-store.js';
import { parseJsonBody, readBodyText, readJsonBody, sendError, sendJson } from './respond.js';
import { RawJson, scanPublishBody } from '../protocol/publish-scan.js';
import {
  BROADCAST_LIST_BYTES,
  broadcastBody,
  disconnectBody,
  empty,
  historyQuery,
  noQuery,
  notifyBody,
  presenceQuery,
  publishBody,
  responses,
  statusQuery,
  unsubscribeBody,
  webhooksFailedQuery,
  webhooksRetryBody,
} from './api-schemas.js';

// ---- plumbing ----------------------------------------------------------------------------

/** A HubError answered with a specific HTTP status instead of the one its code maps to. */
class ApiError extends HubError {
  constructor(
    readonly status: number,
    code: number,
    message: string,
  ) {
    super(code, message);
  }
}

interface Route extends RouteDoc {
  handle(req: IncomingMessage, url: URL): Promise<unknown>;
}

/**
 * The HTTP server API under /api, for backends in any language (docs/http-api.md). Every route
 * but /api/openapi.json needs `Authorization: apikey <apiKey>`; with no apiKey configured every
 * such call gets 401. Bodies and query strings are validated strictly and errors name the bad
 * field or parameter.
 */
export class HttpApi {
  private readonly routes = new Map<string, Route>();
  private readonly startedAt = Date.now();
  private openapi: string | undefined;

  constructor(
    private readonly node: Node,
    private readonly directory: ChannelDirectory,
    private readonly logger?: Logger,
  ) {
    const maxBody = node.options.limits.maxMessageBytes;
    const invalid = 'malformed body or bad field (code 107)';
    const list: Route[] = [
      {
        method: 'POST',
        path: '/api/publish',
        summary: 'Publish to a channel',
        description: 'Server-side publish: no permission checks. Channels without history answer `{"offset":0,"epoch":""}`.',
        auth: true,
        body: publishBody,
        response: responses.publish,
        errors: { 400: invalid, 404: 'unknown namespace (code 102)', 503: 'broker unavailable (code 114)' },
        handle: async (req) => {
          // The fast path keeps `data` as the JSON text it came as; anything it declines gets the full parse and schema.
          const text = await readBodyText(req, maxBody);
          const depth = node.options.limits.maxJsonDepth;
          const body = scanPublishBody(text, depth) ?? parse(publishBody, parseJsonBody(text, depth), 'body');
          return this.node.publish(body.channel, body.data, body.idempotencyKey);
        },
      },
      {
        method: 'POST',
        path: '/api/broadcast',
        summary: 'Publish the same data to several channels',
        description: 'Each channel is published independently: one failing does not fail the others; its result carries an `error`.',
        auth: true,
        body: broadcastBody,
        response: responses.broadcast,
        errors: { 400: invalid },
        handle: async (req) => {
          const body = parse(
            broadcastBody,
            await readJsonBody(req, maxBody + BROADCAST_LIST_BYTES, node.options.limits.maxJsonDepth),
            'body',
          );
          const results = await Promise.all(body.channels.map((ch) => this.publishOne(ch, body.data, body.idempotencyKey)));
          return { results };
        },
      },
      {
        method: 'GET',
        path: '/api/history',
        summary: 'Read a channel’s history',
        description: 'Without `since`: the latest `limit` publications. With `since` and `epoch`: the publications after that offset.',
        auth: true,
        query: historyQuery,
        response: responses.history,
        errors: {
          400: 'bad query parameter (code 107)',
          404: 'unknown namespace (code 102)',
          409: 'history is off in this namespace (code 108), or `epoch` is not the current epoch (code 107)',
        },
        handle: async (_req, url) => this.history(url),
      },
      {
        method: 'GET',
        path: '/api/presence',
        summary: 'Who is subscribed to a channel',
        auth: true,
        query: presenceQuery,
        response: responses.presence,
        errors: {
          400: 'bad query parameter (code 107)',
          404: 'unknown namespace (code 102)',
          409: 'presence is off in this namespace (code 108)',
        },
        handle: async (_req, url) => {
          const q = parse(presenceQuery, queryObject(url), 'query');
          const clients = await this.node.commands.presenceOf(this.node.resolver.resolve(q.channel));
          return { clients, users: presenceUsers(clients) };
        },
      },
      {
        method: 'POST',
        path: '/api/notify',
        summary: 'Send a user a notification',
        description:
          'Publishes to the user’s `notifications:#<user>` channel (with history), so it counts as unread until the user marks it read, on every device.',
        auth: true,
        body: notifyBody,
        response: responses.publish,
        errors: { 400: invalid, 503: 'broker unavailable (code 114)' },
        handle: async (req) => {
          const body = parse(notifyBody, await readJsonBody(req, maxBody, node.options.limits.maxJsonDepth), 'body');
          return this.node.notify(body.user, body.data, body.idempotencyKey);
        },
      },
      {
        method: 'GET',
        path: '/api/status',
        summary: 'Status and last-seen time of users',
        auth: true,
        query: statusQuery,
        response: responses.status,
        errors: { 400: 'bad query parameter (code 107)' },
        handle: async (_req, url) => {
          for (const key of url.searchParams.keys()) if (key !== 'user') throw new HubError(107, `${key}: unknown parameter`);
          const q = parse(statusQuery, { user: url.searchParams.getAll('user') }, 'query');
          return { users: await this.node.statuses(q.user) };
        },
      },
      {
        method: 'POST',
        path: '/api/disconnect',
        summary: 'Close every connection of a user',
        description: 'Every connection of the user, on every node, gets a disconnect push and close code 4501 (terminal).',
        auth: true,
        body: disconnectBody,
        response: empty,
        errors: { 400: invalid },
        handle: async (req) => {
          const body = parse(disconnectBody, await readJsonBody(req, maxBody, node.options.limits.maxJsonDepth), 'body');
          await this.node.disconnectUser(body.user, body.reason ?? 'disconnected by server');
          return {};
        },
      },
      {
        method: 'POST',
        path: '/api/unsubscribe',
        summary: 'End a user’s subscription to a channel',
        description: 'Every connection of the user subscribed to the channel, on every node, gets an unsubscribe push with code 2000.',
        auth: true,
        body: unsubscribeBody,
        response: empty,
        errors: { 400: invalid, 404: 'unknown namespace (code 102)' },
        handle: async (req) => {
          const body = parse(unsubscribeBody, await readJsonBody(req, maxBody, node.options.limits.maxJsonDepth), 'body');
          await this.node.unsubscribeUser(body.user, this.node.resolver.resolve(body.channel).name);
          return {};
        },
      },
      {
        method: 'GET',
        path: '/api/channels',
        summary: 'Channels with subscribers, and how many, over every node',
        description:
          'With several nodes (Redis), each node contributes a snapshot refreshed every `statsIntervalMs`, so counts may lag by that much.',
        auth: true,
        query: noQuery,
        response: responses.channels,
        errors: { 400: 'unknown query parameter (code 107)' },
        handle: async (_req, url) => {
          parse(noQuery, queryObject(url), 'query');
          const channels = [...(await this.directory.channels())]
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(([name, subscribers]) => ({ channel: name, subscribers }));
          return { channels };
        },
      },
      {
        method: 'GET',
        path: '/api/info',
        summary: 'Version and counters of this node',
        auth: true,
        query: noQuery,
        response: responses.info,
        errors: { 400: 'unknown query parameter (code 107)' },
        handle: async (_req, url) => {
          parse(noQuery, queryObject(url), 'query');
          const stats = this.node.stats();
          return {
            version: packageVersion(),
            protocol: PROTOCOL_VERSION,
            uptimeSeconds: Math.floor((Date.now() - this.startedAt) / 1000),
            connections: stats.connections,
            channels: stats.channels,
            nodes: await this.directory.nodes(),
          };
        },
      },
      {
        method: 'GET',
        path: '/api/webhooks/failed',
        summary: 'Webhook events whose retries ran out',
        auth: true,
        query: webhooksFailedQuery,
        response: responses.webhooksFailed,
        errors: { 400: 'bad query parameter (code 107)', 409: 'webhooks are not configured (code 108)' },
        handle: async (_req, url) => {
          const q = parse(webhooksFailedQuery, queryObject(url), 'query');
          if (q.limit !== undefined && (q.limit < 1 || q.limit > 1000)) throw new HubError(107, 'limit: must be an integer from 1 to 1000');
          return { events: await this.webhooks().failed(q.limit ?? 100) };
        },
      },
      {
        method: 'POST',
        path: '/api/webhooks/retry',
        summary: 'Queue failed webhook events again',
        auth: true,
        body: webhooksRetryBody,
        response: responses.webhooksRetry,
        errors: { 400: invalid, 409: 'webhooks are not configured (code 108)' },
        handle: async (req) => {
          const body = parse(webhooksRetryBody, await readJsonBody(req, maxBody, node.options.limits.maxJsonDepth), 'body');
          return { queued: await this.webhooks().retry(body.ids) };
        },
      },
      {
        method: 'GET',
        path: '/api/openapi.json',
        summary: 'This OpenAPI 3.1 document',
        description: 'Served without the API key: it describes the routes and holds no data.',
        auth: false,
        response: responses.openapi,
        errors: {},
        handle: async () => new RawJson((this.openapi ??= JSON.stringify(buildOpenApiDocument(list, packageVersion())))),
      },
    ];
    for (const route of list) this.routes.set(route.path, route);
  }

  /**
   * Handles /api and /api/* requests; resolves false for any other path. `trusted`: the caller
   * (the admin UI, behind its own login) already authorized the request, so no API key is asked.
   */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL, trusted = false): Promise<boolean> {
    if (url.pathname !== '/api' && !url.pathname.startsWith('/api/')) return false;
    try {
      const route = this.routes.get(url.pathname);
      if (!trusted && route?.auth !== false) {
        const refusal = this.refusal(req);
        if (refusal !== undefined) {
          res.setHeader('WWW-Authenticate', 'apikey');
          throw new HubError(101, refusal);
        }
      }
      if (!route) throw new HubError(104, `no such route: ${url.pathname}`);
      if (req.method !== route.method) {
        res.setHeader('Allow', route.method);
        throw new ApiError(405, 107, `method ${req.method ?? ''} not allowed: use ${route.method}`);
      }
      const result = await route.handle(req, url);
      if (result instanceof RawJson) sendRawJson(res, result.text);
      else sendJson(res, 200, result);
    } catch (err) {
      // Anything but a HubError is a bug: the hub logs it and answers 500.
      if (!(err instanceof HubError)) throw err;
      // A body left unread (too large, refused before reading) is not drained: drop the connection.
      if (!req.complete) res.setHeader('Connection', 'close');
      if (err instanceof ApiError) sendJson(res, err.status, { error: err.toWire() });
      else sendError(res, err);
    }
    return true;
  }

  private webhooks(): NonNullable<Node['webhooks']> {
    if (!this.node.webhooks) throw new HubError(108, 'webhooks are not configured');
    return this.node.webhooks;
  }

  /** Why the request's API key is refused, or undefined when it is accepted. */
  private refusal(req: IncomingMessage): string | undefined {
    const key = this.node.options.apiKey;
    if (key === undefined) return 'the HTTP API is off: no apiKey is configured';
    const header = req.headers.authorization;
    if (header === undefined || !/^apikey /i.test(header)) return 'missing API key: send Authorization: apikey KEY';
    // Comparing digests keeps the comparison constant-time whatever the given length.
    const given = createHash('sha256').update(header.slice(7).trim()).digest();
    const expected = createHash('sha256').update(key).digest();
    return timingSafeEqual(given, expected) ? undefined : 'wrong API key';
  }

  private async publishOne(name: string, value: unknown, key: string | undefined): Promise<Record<string, unknown>> {
    try {
      return { channel: name, ...(await this.node.publish(name, value, key)) };
    } catch (err) {
      if (!(err instanceof HubError)) this.logger?.error({ err, channel: name }, 'broadcast publish failed');
      return { channel: name, error: toWireError(err) };
    }
  }

  private async history(url: URL): Promise<RawJson> {
    const q = parse(historyQuery, queryObject(url), 'query');
    const max = this.node.options.limits.historyMaxLimit;
    if (q.limit !== undefined && q.limit > max) throw new HubError(107, `limit: must be at most ${max}`);
    const ch = this.node.resolver.resolve(q.channel);
    const since: StreamPosition | undefined = q.since !== undefined ? { offset: q.since, epoch: q.epoch! } : undefined;
    let read;
    try {
      read = await this.node.commands.readHistory(ch, since, q.limit);
    } catch (err) {
      // With since, a 107 from readHistory means the epoch is not the stream's current one.
      if (since && err instanceof HubError && err.code === 107) {
        throw new ApiError(409, 107, 'epoch: not the channel’s current epoch (its history was reset); read again without since');
      }
      throw err;
    }
    // In a latest-value namespace the history holds the newest publication per key (flagged).
    const latest = isLatestValue(ch);
    const pubs = (latest ? latestPerKey(read.publications) : read.publications).map(encodePublication).join(',');
    return new RawJson(`{"position":${JSON.stringify(read.position)},"publications":[${pubs}]${latest ? ',"latest":true' : ''}}`);
  }
}

function sendRawJson(res: ServerResponse, text: string): void {
  res.writeHead(200, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

/** The query string as an object; a parameter given twice is refused. */
function queryObject(url: URL): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of url.searchParams) {
    if (Object.hasOwn(out, key)) throw new HubError(107, `${key}: given more than once`);
    out[key] = value;
  }
  return out;
}

/** Validates; a failure is HubError 107 whose message starts with the bad field or parameter. */
function parse<T>(schema: z.ZodType<T>, value: unknown, where: 'body' | 'query'): T {
  const result = schema.safeParse(value, {
    error: (issue) => (issue.code === 'invalid_type' && issue.input === undefined ? 'required' : undefined),
  });
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    throw new HubError(107, `${[...issue.path, issue.keys[0]].join('.')}: unknown ${where === 'query' ? 'parameter' : 'field'}`);
  }
  throw new HubError(107, `${issue.path.length ? issue.path.join('.') : where}: ${issue.message}`);
}
