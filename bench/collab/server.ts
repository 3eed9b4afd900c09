/**
 * A document server for the collab bench, in a process of its own, driven by RPC:
 * Switchboard (its /collab endpoint; documents in SQLite under a temporary dataDir, as the
 * embedded default stores them, every update committed before it is applied or forwarded — or,
 * as `switchboard-memory`, in memory), Hocuspocus 3.4 (no persistence extension: memory) or the
 * y-websocket reference server (`y-websocket-server-ref/bin/utils` setupWSConnection, memory).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { WebSocketServer } from 'ws';
import { serveRpc } from '../proc/rpc.js';
import { importHub } from '../servers/built.js';

export type CollabServerKind = 'switchboard' | 'switchboard-memory' | 'hocuspocus' | 'yws-ref';

let stop: (() => Promise<void>) | undefined;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function start(kind: CollabServerKind): Promise<{ port: number }> {
  if (kind === 'switchboard' || kind === 'switchboard-memory') {
    const { createHub } = await importHub();
    // `switchboard`: every update committed to SQLite before anyone sees it (the embedded
    // default); `switchboard-memory`: documents in memory, the peers' persistence class.
    const dataDir = kind === 'switchboard' ? mkdtempSync(join(tmpdir(), 'sb-bench-collab-')) : undefined;
    const hub = createHub({
      ...(dataDir ? { dataDir } : {}),
      auth: { allowAnonymous: true },
      namespaces: { docs: { document: true } },
      limits: { connectionRatePerIp: { perSecond: 100_000, burst: 100_000 }, shutdownSpreadMs: 0, shutdownTimeoutMs: 2_000 },
    });
    const { port } = await hub.listen(0, '127.0.0.1');
    stop = async () => {
      await hub.close();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    };
    return { port };
  }
  if (kind === 'hocuspocus') {
    const { Server } = await import('@hocuspocus/server');
    const port = await freePort();
    const server = new Server({ port, address: '127.0.0.1', quiet: true, stopOnSignals: false });
    await server.listen();
    stop = () => server.destroy();
    return { port };
  }
  const require = createRequire(import.meta.url);
  const { setupWSConnection } = require('y-websocket-server-ref/bin/utils') as {
    setupWSConnection: (ws: unknown, req: unknown, opts?: { docName?: string }) => void;
  };
  const wss = new WebSocketServer({ noServer: true });
  const http: HttpServer = createServer((_req, res) => res.end('okay'));
  http.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => setupWSConnection(ws, req)));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  stop = async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => http.close(() => r()));
  };
  return { port: (http.address() as AddressInfo).port };
}

serveRpc({
  elu: () => performance.eventLoopUtilization(),
  start: (args: { kind: CollabServerKind }) => start(args.kind),
  memory: () => {
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed };
  },
  stop: async () => {
    await stop?.();
    return true;
  },
});

// A normal exit on SIGTERM, so --cpu-prof writes its profile.
process.on('SIGTERM', () => {
  void (stop?.() ?? Promise.resolve()).finally(() => process.exit(0));
});
