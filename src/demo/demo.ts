import type { IncomingMessage, ServerResponse } from 'node:http';
import { signToken } from '../auth/token.js';
import type { NamespaceOptions } from '../config/options.js';
import type { Hub } from '../server/hub.js';

type NamespaceInput = { [K in keyof NamespaceOptions]?: unknown };

/** Namespaces the demo pages (web/) use; a configuration's own options for them win. */
export const DEMO_NAMESPACES: Record<string, NamespaceInput> = {
  chat: { presence: true, joinLeave: true, typing: true, readReceipts: true, history: { size: 500, ttlSeconds: 86_400 } },
  dashboard: { clientPublish: 'none', history: { size: 120, ttlSeconds: 600 } },
  docs: { document: true },
  // web/game.html: positions as client events, and the latest position per player (key) kept.
  game: { delivery: 'latest', clientEvents: true, history: { size: 300, ttlSeconds: 600 } },
};

const DEMO_USER = /^[A-Za-z0-9_-]{1,32}$/;

export interface Demo {
  /** Serves `/demo/token?user=NAME`; resolves false for other paths. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  close(): void;
}

/**
 * Demo mode (`switchboard serve --demo`), for trying the pages on a laptop: anyone may get a
 * token for any name, and the server publishes its own numbers on `dashboard:server` every
 * second. Never turn it on where strangers can reach the server.
 */
export function startDemo(hub: Hub, secret: string): Demo {
  let lastCpu = process.cpuUsage();
  let lastAt = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    const cpu = process.cpuUsage(lastCpu);
    const cpuPercent = Math.round(((cpu.user + cpu.system) / 1000 / Math.max(1, now - lastAt)) * 1000) / 10;
    lastCpu = process.cpuUsage();
    lastAt = now;
    const stats = hub.stats();
    const rates = hub.lastSample();
    const sample = {
      connections: stats.connections,
      channels: stats.channels,
      publicationsPerSecond: rates?.publicationsPerSecond ?? 0,
      deliveriesPerSecond: rates?.deliveriesPerSecond ?? 0,
      rssMb: Math.round(process.memoryUsage().rss / 1e5) / 10,
      cpuPercent,
      at: now,
    };
    hub.publish('dashboard:server', sample).catch(() => undefined);
  }, 1000);
  timer.unref();

  return {
    handle(req, res) {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname !== '/demo/token') return false;
      const user = url.searchParams.get('user') ?? '';
      if (!DEMO_USER.test(user)) {
        res.writeHead(400, { 'Content-Type': 'text/plain' }).end('user: 1-32 characters of A-Z a-z 0-9 _ -');
        return true;
      }
      void signToken({ secret, user, ttl: '1h' }).then((token) => {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' }).end(token);
      });
      return true;
    },
    close() {
      clearInterval(timer);
    },
  };
}
