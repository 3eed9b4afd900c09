/**
 * A server process of the bench: `start` launches one server kind, `stats` reports its memory,
 * `gc` collects garbage (the process runs with --expose-gc) so idle memory is measured settled.
 * CPU seconds are read from outside (/proc), the same way for every kind.
 */
import { performance } from 'node:perf_hooks';
import { serveRpc } from '../proc/rpc.js';
import type { RunningServer, ServerKind, ServerOptions, ServerStats } from './types.js';

let running: RunningServer | undefined;

async function startKind(kind: ServerKind, o: ServerOptions): Promise<RunningServer> {
  switch (kind) {
    case 'switchboard':
      return (await import('./switchboard.js')).start(o, 'off');
    case 'switchboard-memory':
      return (await import('./switchboard.js')).start(o, 'memory');
    case 'switchboard-sqlite':
      return (await import('./switchboard.js')).start(o, 'sqlite');
    case 'switchboard-redis':
      return (await import('./switchboard.js')).start(o, 'redis');
    case 'socketio':
      return (await import('./socketio.js')).start(o);
    case 'ws':
      return (await import('./ws-broadcast.js')).start(o, 'plain');
    case 'ws-coalesce':
      return (await import('./ws-broadcast.js')).start(o, 'coalesce');
    case 'switchboard-game':
      return (await import('./switchboard-game.js')).start(o);
    case 'socketio-game':
      return (await import('./socketio-game.js')).start(o);
  }
}

serveRpc({
  start: async ({ kind, options }: { kind: ServerKind; options: ServerOptions }) => {
    if (running) throw new Error('already started');
    running = await startKind(kind, options);
    return running;
  },
  gc: async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    for (let i = 0; i < 3 && gc; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    return gc !== undefined;
  },
  elu: () => performance.eventLoopUtilization(),
  stats: (): ServerStats => {
    const m = process.memoryUsage();
    return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
  },
});

// --cpu-prof writes its profile only on a normal exit.
process.on('SIGTERM', () => process.exit(0));
