import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Node } from '../hub/node.js';
import { HubError } from '../protocol/errors.js';
import { readJsonBody, sendError, sendJson } from './respond.js';

const publishBody = z
  .object({
    channel: z.string().min(1).max(255),
    data: z.unknown().refine((v) => v !== undefined, 'required'),
    idempotencyKey: z.string().min(1).max(128).optional(),
  })
  .strict();

interface Route {
  method: 'GET' | 'POST';
  handle(req: IncomingMessage, url: URL): Promise<unknown>;
}

/**
 * The HTTP server API under /api, for backends in any language. Every route needs
 * `Authorization: apikey <apiKey>`; bodies are validated and errors name the bad field.
 */
export class HttpApi {
  private readonly routes: Record<string, Route>;

  constructor(private readonly node: Node) {
    this.routes = {
      '/api/publish': {
        method: 'POST',
        handle: async (req) => {
          const body = parse(publishBody, await readJsonBody(req, this.node.options.limits.maxMessageBytes));
          return this.node.publish(body.channel, body.data, body.idempotencyKey);
        },
      },
    };
  }

  /** Handles /api/* requests; returns false for any other path. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (!url.pathname.startsWith('/api/')) return false;
    try {
      if (!this.authorized(req)) {
        sendJson(res, 401, { error: { code: 101, message: 'missing or wrong API key (Authorization: apikey KEY)' } });
        return true;
      }
      const route = this.routes[url.pathname];
      if (!route) throw new HubError(104, `no such route: ${url.pathname}`);
      if (req.method !== route.method) {
        res.setHeader('Allow', route.method);
        sendJson(res, 405, { error: { code: 107, message: `use ${route.method}` } });
        return true;
      }
      sendJson(res, 200, await route.handle(req, url));
    } catch (err) {
      sendError(res, err);
    }
    return true;
  }

  private authorized(req: IncomingMessage): boolean {
    const key = this.node.options.apiKey;
    const header = req.headers.authorization;
    if (key === undefined || header === undefined || !header.toLowerCase().startsWith('apikey ')) return false;
    const given = Buffer.from(header.slice(7).trim());
    const expected = Buffer.from(key);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  throw new HubError(107, `${issue?.path.length ? issue.path.join('.') : 'body'}: ${issue?.message ?? 'invalid'}`);
}
