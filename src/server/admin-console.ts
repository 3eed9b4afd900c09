import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { AdminUi } from '../admin/admin-ui.js';
import type { FeatureStatusRegistry } from '../admin/features.js';
import { NodeStats } from '../admin/node-stats.js';
import { AdminSessions } from '../admin/sessions.js';
import type { Identity } from '../auth/verifier.js';
import type { HubOptions } from '../config/options.js';
import { packageVersion } from '../http/package-files.js';
import type { Node } from '../hub/node.js';
import type { Metrics } from '../metrics/metrics.js';
import type { RedisClient } from '../redis/connection.js';

export interface AdminConsoleParts {
  node: Node;
  metrics: Metrics;
  /** The shared Redis connection, through which every node's admin page sees every node. */
  redis: RedisClient | undefined;
  options: HubOptions;
  logger: Logger;
  features: FeatureStatusRegistry;
  /** The HTTP API, trusted (the admin session stands for the API key). */
  api: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;
  /** An SSE stream for the live tail, as the given identity. */
  tail: (req: IncomingMessage, res: ServerResponse, url: URL, identity: Identity) => Promise<void>;
}

/** The admin UI of a hub (/admin): its node statistics, its login sessions and its pages. */
export class AdminConsole {
  readonly stats: NodeStats;
  readonly ui: AdminUi;
  private readonly sessions: AdminSessions;

  constructor(p: AdminConsoleParts) {
    const o = p.options;
    this.stats = new NodeStats(p.node, p.metrics, packageVersion(), p.redis, o.redisPrefix, o.redisCommandTimeoutMs, p.logger);
    this.sessions = new AdminSessions(
      () => [o.apiKey, o.adminPassword].filter((s): s is string => s !== undefined),
      o.adminSessionTtlSeconds * 1000,
    );
    this.ui = new AdminUi({ sessions: this.sessions, stats: this.stats, features: p.features, api: p.api, tail: p.tail });
  }

  /** Ends the sessions' sweep and removes this node from the shared registry; the second runs even if the first throws. */
  async stop(): Promise<void> {
    try {
      this.sessions.stop();
    } finally {
      await this.stats.stop();
    }
  }
}
