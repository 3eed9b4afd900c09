import { withTimeout } from '../limits/timeout.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { pino, type Logger } from 'pino';
import { TokenVerifier } from '../auth/verifier.js';
import type { Broker } from '../broker/broker.js';
import type { StreamPosition } from '../stream/types.js';
import { resolveOptions, type HubOptions } from '../config/options.js';
import { HttpApi } from '../http/api.js';
import { sendJson } from '../http/respond.js';
import {
  CLIENT_BUNDLE_DIR,
  CLIENT_BUNDLE_FILE,
  CLIENT_BUNDLE_PATH,
  COLLAB_BUNDLE_FILE,
  COLLAB_BUNDLE_PATH,
} from '../http/package-files.js';
import { serveStatic } from '../http/static-files.js';
import { CloseCode } from '../protocol/close-codes.js';
import type { StatusRecord } from '../store/store.js';
import { Admission } from '../transport/admission.js';
import { SseAcceptor } from '../transport/sse.js';
import { FlushScheduler } from '../connection/outbound-queue.js';
import { Storage } from './storage.js';
import type { ChannelDirectory } from '../stats/channel-directory.js';
import { requestUrl } from '../http/request-url.js';
import { WebSocketAcceptor } from '../transport/websocket.js';
import type { RpcHandler } from '../hub/hooks.js';
import { Node } from '../hub/node.js';
import { Metrics } from '../metrics/metrics.js';
import type { DocumentHost } from '../collab/host.js';
import { openDocuments } from './documents.js';
import type { DocumentRoutes } from '../collab/http-routes.js';
import type { CollabAcceptor } from '../transport/collab-websocket.js';
import { Webhooks } from '../webhooks/webhooks.js';
import { UPLOT_DIR } from '../admin/admin-ui.js';
import { AdminConsole } from './admin-console.js';
import type { CreateHubOptions, HubStats, ListenResult } from './hub-types.js';
import { FeatureStatusRegistry } from '../admin/features.js';
import { registerFeatureStatus } from './feature-status.js';
import type { Sample } from '../admin/node-stats.js';
import { staticMethod } from '../http/static-files.js';

export type { CreateHubOptions, HubStats, ListenResult } from './hub-types.js';

/** Creates a hub. Options are validated here, once; a bad option throws OptionsError naming it. */
export function createHub(input: CreateHubOptions = {}): Hub {
  return new Hub(input);
}

/**
 * The public face of a Switchboard process. Embed it in an existing HTTP server with `attach`,
 * or let it run its own with `listen`.
 */
export class Hub {
  readonly options: HubOptions;
  private readonly node: Node;
  private readonly admission: Admission;
  private readonly acceptor: WebSocketAcceptor;
  private readonly sse: SseAcceptor;
  private readonly api: HttpApi;
  private readonly metrics: Metrics;
  private readonly directory: ChannelDirectory;
  private readonly logger: Logger;
  private readonly broker: Broker;
  private readonly storage: Storage;
  private readonly verifier: TokenVerifier;
  private readonly webhooks: Webhooks | undefined;
  private server: Server | undefined;
  private admin: Server | undefined;
  private readonly extraHandlers: Array<(req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>> = [];
  private closing: Promise<void> | undefined;
  private readonly documents: DocumentHost;
  private readonly collab: CollabAcceptor;
  private readonly documentRoutes: DocumentRoutes;
  /**
   * Status providers shown in the admin UI's "features" panel: a feature registers
   * `hub.features.register('webhooks', () => ({ queued: 3 }))` and calls the returned function when it stops.
   */
  readonly features = new FeatureStatusRegistry();
  private readonly adminConsole: AdminConsole;
  private readonly removeFeatureStatus: () => void;

  constructor(input: CreateHubOptions) {
    const { hooks, logger, broker, presence, store: storeOption, documentHooks, documentStore, ...rest } = input;
    const store = typeof storeOption === 'object' ? storeOption : undefined;
    this.options = resolveOptions(typeof storeOption === 'string' ? { ...rest, store: storeOption } : rest);
    this.logger = logger ?? pino({ name: 'switchboard', level: process.env.SWITCHBOARD_LOG_LEVEL ?? 'warn' });
    this.storage = new Storage(
      this.options,
      this.logger,
      { ...(broker ? { broker } : {}), ...(presence ? { presence } : {}), ...(store ? { store } : {}) },
      (restored) =>
        // Redis lost entries of live sessions (a restart, an outage past the TTL): tell the Node.
        this.node.restored(restored.kind, restored.name, restored.users),
    );
    this.broker = this.storage.broker;
    this.verifier = new TokenVerifier(this.options.auth);
    this.metrics = new Metrics({ stats: () => this.node.stats() });
    const wh = this.options.webhooks;
    if (wh) {
      const metrics = this.metrics;
      this.webhooks = new Webhooks(
        wh,
        this.storage.openWebhookStore(new Set(wh.events)),
        { delivered: (n) => metrics.webhooksDelivered(n), failed: (n) => metrics.webhooksFailed(n) },
        this.logger,
      );
    }
    this.node = new Node({
      ...(this.webhooks ? { webhooks: this.webhooks } : {}),
      metrics: this.metrics,
      options: this.options,
      broker: this.storage.broker,
      presence: this.storage.presence,
      store: this.storage.store,
      verifier: this.verifier,
      hooks: hooks ?? {},
      logger: this.logger,
    });
    this.admission = new Admission(this.node);
    const scheduler = new FlushScheduler();
    this.acceptor = new WebSocketAcceptor(this.node, this.admission, scheduler, this.logger);
    this.sse = new SseAcceptor(this.node, this.admission, scheduler, this.logger);
    this.directory = this.storage.openDirectory(() => this.node.channelCounts());
    this.api = new HttpApi(this.node, this.directory, this.logger);
    this.storage.startOutbox(
      {
        publish: (channel, data, key) => this.node.publish(channel, data, key),
        notify: (user, data, key) => this.node.notify(user, data, key),
      },
      (outcome, count) => this.metrics.outboxRows(outcome, count),
    );
    ({
      documents: this.documents,
      acceptor: this.collab,
      routes: this.documentRoutes,
    } = openDocuments({
      store: documentStore ?? this.storage.openDocStore(),
      broker: this.broker,
      node: this.node,
      admission: this.admission,
      options: this.options,
      hooks: hooks ?? {},
      documentHooks: documentHooks ?? {},
      logger: this.logger,
    }));
    this.adminConsole = new AdminConsole({
      node: this.node,
      metrics: this.metrics,
      redis: this.storage.sharedRedis,
      options: this.options,
      logger: this.logger,
      features: this.features,
      api: (req, res, url) => this.api.handle(req, res, url, true),
      tail: (req, res, url, identity) => this.sse.handle(req, res, url, identity),
    });
    this.removeFeatureStatus = registerFeatureStatus(this.features, {
      options: this.options,
      webhooks: this.webhooks,
      proxy: this.node.proxy,
      documents: this.documents,
      sessions: this.node.sessions,
      metrics: this.metrics,
    });
  }

  /** Library access to documents: open (loading it) to read its Y.Doc, or apply an update as the server. */
  document(name: string): Promise<import('yjs').Doc> {
    return this.documents.read(name);
  }

  /** Stores and applies a Yjs update to a document (server-side, no permission checks); resolves with its sequence number. */
  applyDocumentUpdate(name: string, update: Uint8Array): Promise<number> {
    return this.documents.applyUpdate(name, update);
  }

  /** Starts an HTTP server of its own: WebSocket at `options.path`, the API, health and pages. */
  async listen(port: number = this.options.port, host: string | undefined = this.options.host): Promise<ListenResult> {
    if (this.server) throw new Error('hub is already listening');
    await this.verifier.ready();
    await this.storage.ready();
    const { headersTimeoutMs } = this.options.limits;
    const server = createServer(
      // Node checks these timeouts every connectionsCheckingInterval; keep it well under them.
      {
        headersTimeout: headersTimeoutMs,
        requestTimeout: headersTimeoutMs * 3,
        connectionsCheckingInterval: Math.min(1000, headersTimeoutMs / 2),
      },
      (req, res) => void this.handleRequest(req, res),
    );
    this.server = server;
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!this.upgradeIfOurs(req, socket, head)) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const actual = (server.address() as AddressInfo).port;
    const shown = host === undefined || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    const result: ListenResult = { port: actual, url: `ws://${shown}:${actual}${this.options.path}`, httpUrl: `http://${shown}:${actual}` };
    if (this.options.adminPort !== null) result.adminUrl = await this.listenAdmin(this.options.adminPort, this.options.adminHost);
    return result;
  }

  /** /metrics (when `withMetrics`), /healthz and /readyz. */
  private async handleOps(req: IncomingMessage, res: ServerResponse, url: URL, withMetrics: boolean): Promise<boolean> {
    if (withMetrics && this.options.metricsPath !== null && url.pathname === this.options.metricsPath && req.method === 'GET') {
      const { contentType, body } = await this.metrics.text();
      res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' }).end(body);
      return true;
    }
    if (url.pathname === '/healthz') {
      sendJson(res, 200, { status: 'ok' });
      return true;
    }
    if (url.pathname === '/readyz') {
      const ready = !this.closing && (await this.brokerHealthy());
      sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'unavailable' });
      return true;
    }
    return false;
  }

  /** The admin listener (`adminPort`): metrics and health only, on its own port and interface. */
  private async listenAdmin(port: number, host: string): Promise<string> {
    const admin = createServer((req, res) => {
      const url = requestUrl(req);
      if (!url) {
        sendJson(res, 400, { error: { code: 107, message: 'request target is not a valid URL' } });
        return;
      }
      this.adminConsole.ui
        .handle(req, res, url)
        .then(async (handled) => handled || (await this.handleOps(req, res, url, true)))
        .then(
          (handled) => {
            if (!handled) sendJson(res, 404, { error: { code: 104, message: 'not found' } });
          },
          (err: unknown) => {
            this.logger.error({ err }, 'admin request failed');
            if (!res.headersSent) sendJson(res, 500, { error: { code: 100, message: 'internal server error' } });
          },
        );
    });
    this.admin = admin;
    await new Promise<void>((resolve, reject) => {
      admin.once('error', reject);
      admin.listen(port, host, () => {
        admin.off('error', reject);
        resolve();
      });
    });
    return `http://${host.includes(':') ? `[${host}]` : host}:${(admin.address() as AddressInfo).port}`;
  }

  /** Serves WebSocket upgrades for `path` (default `options.path`) on an existing HTTP server. */
  attach(server: Server, { path = this.options.path }: { path?: string } = {}): this {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.upgradeIfOurs(req, socket, head, path);
    });
    return this;
  }

  /**
   * Handles the hub's HTTP routes (/api/*, the SSE stream, /healthz, /readyz, demo pages). Resolves false, having
   * sent nothing, when the request is not one of them, so an embedding server can go on.
   */
  async handleRequest(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = requestUrl(req);
    if (!url) {
      if (!res.headersSent) sendJson(res, 400, { error: { code: 107, message: 'request target is not a valid URL' } });
      return true;
    }
    try {
      for (const handler of this.extraHandlers) if (await handler(req, res)) return true;
      if (await this.documentRoutes.handle(req, res, url)) return true;
      if (url.pathname === '/admin' || url.pathname.startsWith('/admin/')) {
        // With an admin port, the admin UI lives there only.
        if (this.options.adminPort === null) return await this.adminConsole.ui.handle(req, res, url);
        sendJson(res, 404, { error: { code: 104, message: 'not found: the admin UI is on the admin port' } });
        return true;
      }
      if (await this.api.handle(req, res, url)) return true;
      if (url.pathname === this.options.sse.path) {
        await this.sse.handle(req, res, url);
        return true;
      }
      // With an admin port, metrics live there only; health stays here too, for load balancers.
      if (await this.handleOps(req, res, url, this.options.adminPort === null)) return true;
      const method = staticMethod(req.method);
      if (
        method &&
        url.pathname === CLIENT_BUNDLE_PATH &&
        (await serveStatic(CLIENT_BUNDLE_DIR, `/${CLIENT_BUNDLE_FILE}`, res, method === 'HEAD'))
      ) {
        return true;
      }
      if (
        method &&
        url.pathname === COLLAB_BUNDLE_PATH &&
        (await serveStatic(CLIENT_BUNDLE_DIR, `/${COLLAB_BUNDLE_FILE}`, res, method === 'HEAD'))
      ) {
        return true;
      }
      if (this.options.webDir !== null && method) {
        // The demo dashboard draws with uPlot, served from the package's dependency.
        if (
          url.pathname.startsWith('/vendor/uplot/') &&
          (await serveStatic(UPLOT_DIR, url.pathname.slice('/vendor/uplot'.length), res, method === 'HEAD'))
        )
          return true;
        if (await serveStatic(this.options.webDir, url.pathname, res, method === 'HEAD')) return true;
      }
    } catch (err) {
      this.logger.error({ err }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { error: { code: 100, message: 'internal server error' } });
      return true;
    }
    if (this.server && !res.headersSent) sendJson(res, 404, { error: { code: 104, message: 'not found' } });
    return false;
  }

  /**
   * Adds routes of your own to the hub's HTTP server (`listen`), tried before the hub's: the
   * handler answers and resolves true, or resolves false and sends nothing.
   */
  use(handler: (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>): this {
    this.extraHandlers.push(handler);
    return this;
  }

  /** Publishes from the server side (no permission checks); resolves with the position. */
  publish(channel: string, data: unknown, options: { idempotencyKey?: string } = {}): Promise<StreamPosition> {
    return this.node.publish(channel, data, options.idempotencyKey);
  }

  /** Sends a user a notification: stored on `notifications:#<user>`, counted unread until read. */
  notify(user: string, data: unknown, options: { idempotencyKey?: string } = {}): Promise<StreamPosition> {
    return this.node.notify(user, data, options.idempotencyKey);
  }

  /** Status and last-seen time of users. */
  statuses(users: readonly string[]): Promise<Record<string, StatusRecord>> {
    return this.node.statuses(users);
  }

  /** Registers an RPC method callable by clients with `{"method":"rpc","params":{"method":name}}`. */
  rpc(name: string, handler: RpcHandler): this {
    this.node.registerRpc(name, handler);
    return this;
  }

  /** Closes every connection of a user, on every node. */
  disconnect(user: string, reason = 'disconnected by server'): Promise<void> {
    return this.node.disconnectUser(user, reason);
  }

  /** Ends a user's subscription to a channel, on every node. */
  unsubscribe(user: string, channel: string): Promise<void> {
    return this.node.unsubscribeUser(user, channel);
  }

  stats(): HubStats {
    return this.node.stats();
  }

  /** Documents open (in memory) on this node. */
  get openDocuments(): number {
    return this.documents.openCount;
  }

  /** This node's latest one-second sample: publications/s, deliveries/s, connections, users, … (the admin UI's). */
  lastSample(): Sample | undefined {
    return this.adminConsole.stats.history().at(-1);
  }

  /**
   * Graceful shutdown: stops accepting, tells every client to reconnect elsewhere (close 4000)
   * with the closes spread over `limits.shutdownSpreadMs`, and drops whatever is still open at
   * `limits.shutdownTimeoutMs`.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const { shutdownSpreadMs, shutdownTimeoutMs } = this.options.limits;
    const started = Date.now();
    const deadline = started + shutdownTimeoutMs;
    // Storage gets the last part of the budget whatever came before, so a stalled Redis cannot
    // hold the process past shutdownTimeoutMs.
    const storageDeadline = deadline - Math.min(2_000, shutdownTimeoutMs / 4);
    this.admission.stop();
    try {
      const serverClosed = this.server ? new Promise<void>((resolve) => this.server!.close(() => resolve())) : Promise.resolve();
      this.server?.closeIdleConnections();
      const sessions = [...this.node.sessions];
      await Promise.all(
        sessions.map(
          (session, i) =>
            new Promise<void>((resolve) => {
              const delay = sessions.length > 1 ? Math.floor((i * shutdownSpreadMs) / (sessions.length - 1)) : 0;
              setTimeout(() => {
                try {
                  session.close(CloseCode.SHUTDOWN);
                } finally {
                  resolve();
                }
              }, delay);
            }),
        ),
      );
      await this.acceptor.drain(storageDeadline);
      await this.collab.drain(storageDeadline);
      this.server?.closeAllConnections();
      await serverClosed;
      if (this.admin) {
        const admin = this.admin;
        admin.closeAllConnections();
        await new Promise<void>((resolve) => admin.close(() => resolve()));
      }
      await this.node.settle(storageDeadline);
      await withTimeout(this.documents.close(), Math.max(100, storageDeadline - Date.now()), 'documents close timed out').catch(
        (err: unknown) => this.logger.warn({ err }, 'closing documents failed'),
      );
    } finally {
      this.node.stop();
      try {
        this.removeFeatureStatus();
        await this.adminConsole.stop();
        await this.webhooks?.stop();
      } finally {
        await this.storage.close(deadline);
      }
    }
  }

  private upgradeIfOurs(req: IncomingMessage, socket: Duplex, head: Buffer, path: string = this.options.path): boolean {
    const q = req.url?.indexOf('?') ?? -1;
    const pathname = q === -1 ? req.url : req.url!.slice(0, q);
    const collabPrefix = `${this.options.collab.path}/`;
    if (pathname?.startsWith(collabPrefix) && pathname.length > collabPrefix.length) {
      let name: string;
      try {
        name = decodeURIComponent(pathname.slice(collabPrefix.length));
      } catch {
        return false;
      }
      this.collab.handleUpgrade(req, socket, head, name);
      return true;
    }
    if (pathname !== path) return false;
    this.acceptor.handleUpgrade(req, socket, head);
    return true;
  }

  private async brokerHealthy(): Promise<boolean> {
    const checker = this.broker as Partial<{ healthy(): Promise<boolean> }>;
    if (typeof checker.healthy !== 'function') return true;
    try {
      // Brokers answer quickly themselves (RedisBroker: status + a bounded PING); this bounds any other.
      return await withTimeout(checker.healthy(), Math.min(this.options.redisCommandTimeoutMs, 1_000), 'health check timed out');
    } catch {
      return false;
    }
  }
}
