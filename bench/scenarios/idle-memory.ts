import type { ServerStats } from '../servers/types.js';
import type { IdleResult } from '../results.js';
import { sleep, type RunContext } from './context.js';
import { openSubscribers, round } from './measure.js';
import type { ServerHandle } from './servers.js';

const IDLE_CHANNELS = Array.from({ length: 100 }, (_, i) => `idle.${i}`);

/** The server's memory after full collections (the process runs with --expose-gc). */
export async function settledStats(server: ServerHandle, timeoutMs = 30_000): Promise<ServerStats> {
  await server.child.call('gc', undefined, timeoutMs);
  await sleep(200);
  await server.child.call('gc', undefined, timeoutMs);
  return server.child.call<ServerStats>('stats', undefined, timeoutMs);
}

/**
 * Scenario 3, idle memory: the server's RSS after a full GC, before and after `idleConns`
 * authenticated connections each subscribed to one of 100 channels, divided by the count.
 */
export async function measureIdleMemory(ctx: RunContext, server: ServerHandle): Promise<IdleResult> {
  const n = ctx.cfg.idleConns;
  const before = await settledStats(server);
  const res = await openSubscribers(
    ctx,
    {
      target: server.target,
      count: n,
      channels: IDLE_CHANNELS,
      perConn: 1,
      userPrefix: 'i',
      sampleEvery: n + 1,
      concurrency: ctx.cfg.openConcurrency,
    },
    90_000,
  );
  await sleep(Math.min(500, 100 + n / 10));
  const after = await settledStats(server);
  const rssDelta = after.rss - before.rss;
  return {
    connections: res.opened,
    failed: res.failed,
    kbPerConn: round(rssDelta / res.opened / 1024, 2),
    rssDeltaMb: round(rssDelta / 2 ** 20, 1),
    heapKbPerConn: round((after.heapUsed + after.external - before.heapUsed - before.external) / res.opened / 1024, 2),
  };
}
