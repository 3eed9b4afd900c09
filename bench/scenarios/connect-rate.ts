import type { OpenResult } from '../loadgen/subscribers.js';
import type { ConnectResult } from '../results.js';
import type { RunContext } from './context.js';
import { round } from './measure.js';
import type { ServerHandle } from './servers.js';

/**
 * Scenario 4, connect rate: `connectConns` fresh connections, `connectConcurrency` at a time,
 * each one TCP connect + WebSocket upgrade + JWT verification (+ the protocol's connect reply),
 * with no subscription. Tokens are signed beforehand, outside the timing.
 */
export async function measureConnectRate(ctx: RunContext, server: ServerHandle): Promise<ConnectResult> {
  const n = ctx.cfg.connectConns;
  const cpu0 = server.child.cpuSeconds();
  const res: OpenResult = await ctx.subs.open(
    {
      target: server.target,
      count: n,
      channels: ['none'],
      perConn: 0,
      secret: ctx.secret,
      userPrefix: 'c',
      sampleEvery: n + 1,
      concurrency: ctx.cfg.connectConcurrency,
      timeoutMs: 60_000,
    },
    {},
    70_000,
  );
  const cpu = server.child.cpuSeconds() - cpu0;
  if (res.failed > 0) throw new Error(`${res.failed} of ${n} handshakes failed: ${res.firstError ?? '?'}`);
  return {
    connections: res.opened,
    failed: res.failed,
    handshakesPerSec: Math.round(res.opened / (res.elapsedMs / 1000)),
    elapsedMs: res.elapsedMs,
    serverCpuS: round(cpu, 2),
  };
}
