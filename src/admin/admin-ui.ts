import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../auth/verifier.js';
import { PACKAGE_ROOT, packageVersion } from '../http/package-files.js';
import { readJsonBody, sendError, sendJson } from '../http/respond.js';
import { serveStatic, staticMethod } from '../http/static-files.js';
import { HubError } from '../protocol/errors.js';
import type { FeatureStatusRegistry } from './features.js';
import type { NodeSnapshot, NodeStats } from './node-stats.js';
import { assertSameOrigin, clearedCookie, sessionCookie, type AdminSessions } from './sessions.js';

/** The admin UI's pages and scripts (web/admin in the package). */
const PAGES = `${PACKAGE_ROOT}web/admin`;
/** uPlot's built files, served under /admin/vendor/ (and /vendor/uplot/ for the demo dashboard). */
export const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve('uplot'));
/** User id of the admin UI's live-tail connections. */
export const ADMIN_TAIL_USER = 'switchboard-admin';

/** HTTP API routes the admin UI reaches through /admin/api/<name>, and whether they change state. */
const FORWARDED: Record<string, boolean> = {
  publish: true,
  broadcast: true,
  disconnect: true,
  unsubscribe: true,
  notify: true,
  history: false,
  presence: false,
  channels: false,
  info: false,
  status: false,
};

export interface AdminParts {
  sessions: AdminSessions;
  stats: NodeStats;
  features: FeatureStatusRegistry;
  /** The HTTP API, called with the admin's authority (no API key). */
  api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
  /** Opens an SSE stream with the given identity (the live tail). */
  tail(req: IncomingMessage, res: ServerResponse, url: URL, identity: Identity): Promise<void>;
}

/**
 * The admin web UI under /admin (docs/operations.md, "Admin UI"): a login page for anyone, and
 * for a logged-in session the overview, channels, users and actions pages and their data
 * endpoints (401 without a session). Actions go through the HTTP API's own routes.
 */
export class AdminUi {
  constructor(private readonly parts: AdminParts) {}

  /** Handles /admin and /admin/*; resolves false for any other path. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const path = url.pathname;
    if (path !== '/admin' && !path.startsWith('/admin/')) return false;
    try {
      await this.route(req, res, url, path);
    } catch (err) {
      if (!(err instanceof HubError)) throw err;
      if (!req.complete) res.setHeader('Connection', 'close');
      sendError(res, err);
    }
    return true;
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL, path: string): Promise<void> {
    const { sessions } = this.parts;
    const head = staticMethod(req.method) === 'HEAD';
    if (path === '/admin' || path === '/admin/') {
      if (!staticMethod(req.method)) throw methodNotAllowed(res, 'GET');
      // The page a visitor gets depends on the cookie: never cached.
      res.setHeader('Cache-Control', 'no-store');
      res.setHeader('Vary', 'Cookie');
      await this.page(res, sessions.sessionOf(req) ? '/index.html' : '/login.html', head);
      return;
    }
    if (path.startsWith('/admin/static/')) {
      if (!staticMethod(req.method) || !(await serveStatic(PAGES, path.slice('/admin/static'.length), res, head))) notFound();
      return;
    }
    if (path.startsWith('/admin/vendor/')) {
      if (!staticMethod(req.method) || !(await serveStatic(UPLOT_DIR, path.slice('/admin/vendor'.length), res, head))) notFound();
      return;
    }
    if (path === '/admin/login') {
      if (req.method !== 'POST') throw methodNotAllowed(res, 'POST');
      assertSameOrigin(req);
      // A JSON content type cannot be sent cross-site without a CORS preflight, which is never granted.
      if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) throw new HubError(107, 'body: send application/json');
      const body = await readJsonBody(req, 4_096);
      const password = (body as { password?: unknown } | null)?.password;
      if (typeof password !== 'string' || password === '') throw new HubError(107, 'password: required');
      const login = sessions.login(password, req.socket.remoteAddress ?? '');
      res.setHeader('Set-Cookie', sessionCookie(req, login.id, login.maxAgeSeconds));
      sendJson(res, 200, { csrf: login.csrf, expiresInSeconds: login.maxAgeSeconds });
      return;
    }
    if (path === '/admin/logout') {
      if (req.method !== 'POST') throw methodNotAllowed(res, 'POST');
      sessions.authorize(req, true);
      sessions.logout(req);
      res.setHeader('Set-Cookie', clearedCookie());
      sendJson(res, 200, {});
      return;
    }
    if (!path.startsWith('/admin/api/')) notFound();
    const name = path.slice('/admin/api/'.length);
    const forwarded = FORWARDED[name];
    const changesState = forwarded === true || req.method !== 'GET';
    sessions.authorize(req, changesState);
    if (forwarded !== undefined) {
      await this.parts.api(req, res, new URL(`/api/${name}${url.search}`, url));
      return;
    }
    if (req.method !== 'GET') throw methodNotAllowed(res, 'GET');
    switch (name) {
      case 'session': {
        const session = sessions.sessionOf(req)!;
        sendJson(res, 200, { csrf: session.csrf, expiresAt: session.expiresAt });
        return;
      }
      case 'overview':
        sendJson(res, 200, await this.overview());
        return;
      case 'connections':
        sendJson(res, 200, await this.connections(url));
        return;
      case 'tail': {
        const channel = url.searchParams.get('channel');
        if (!channel || url.searchParams.getAll('channel').length !== 1) throw new HubError(107, 'channel: exactly one required');
        await this.parts.tail(req, res, url, { user: ADMIN_TAIL_USER, channels: [channel] });
        return;
      }
      default:
        notFound();
    }
  }

  private async page(res: ServerResponse, file: string, head: boolean): Promise<void> {
    if (!(await serveStatic(PAGES, file, res, head))) notFound();
  }

  private async overview(): Promise<Record<string, unknown>> {
    const { stats, features } = this.parts;
    const [nodes, redis, featureList] = await Promise.all([
      stats.all().catch((err: unknown) => {
        // Without Redis answering, this node still shows itself.
        if (err instanceof HubError) return [stats.local()];
        throw err;
      }),
      stats.redisHealth(),
      features.collect(),
    ]);
    const sum = (pick: (n: NodeSnapshot) => number): number => nodes.reduce((n, node) => n + pick(node), 0);
    const users = new Set(nodes.flatMap((n) => n.connections.map((c) => c.user)));
    return {
      version: packageVersion(),
      node: stats.id,
      uptimeSeconds: Math.floor((Date.now() - stats.startedAt) / 1000),
      totals: {
        nodes: nodes.length,
        connections: sum((n) => n.sample.connections),
        users: users.size,
        publicationsPerSecond: Math.round(sum((n) => n.sample.publicationsPerSecond) * 10) / 10,
        deliveriesPerSecond: Math.round(sum((n) => n.sample.deliveriesPerSecond) * 10) / 10,
        slowConsumerDrops: sum((n) => n.sample.slowConsumerDrops),
        errors: sum((n) => n.sample.errors),
      },
      nodes: nodes.map(({ connections: _c, ...rest }) => ({ ...rest, uptimeSeconds: Math.floor((Date.now() - rest.startedAt) / 1000) })),
      samples: stats.history(),
      redis: redis ?? null,
      features: featureList,
    };
  }

  /** Connections of every live node, grouped by user; `q` filters users by substring. */
  private async connections(url: URL): Promise<Record<string, unknown>> {
    const q = (url.searchParams.get('q') ?? '').toLowerCase();
    const nodes = await this.parts.stats.all();
    const byUser = new Map<string, NodeSnapshot['connections']>();
    for (const node of nodes) {
      for (const c of node.connections) {
        if (q && !c.user.toLowerCase().includes(q)) continue;
        const list = byUser.get(c.user) ?? [];
        list.push(c);
        byUser.set(c.user, list);
      }
    }
    const users = [...byUser]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([user, connections]) => ({ user, connections }));
    return { users, truncated: nodes.some((n) => n.truncated) };
  }
}

function notFound(): never {
  throw new HubError(104, 'not found');
}

function methodNotAllowed(res: ServerResponse, allow: string): HubError {
  res.setHeader('Allow', allow);
  return new HubError(107, `use ${allow}`);
}
