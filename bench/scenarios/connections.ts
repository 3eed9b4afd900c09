import { CONNECTION_SERVERS } from '../config.js';
import type { ConnectResult, IdleResult, PerServer } from '../results.js';
import { errorText, SERVER_LABEL, type RunContext } from './context.js';
import { measureConnectRate } from './connect-rate.js';
import { measureIdleMemory } from './idle-memory.js';
import { withServers } from './servers.js';

/**
 * Scenarios 3 and 4 share one server process per kind: idle memory first (on a fresh
 * process, so nothing freed earlier is reused), then, after those connections are dropped,
 * the connect rate.
 */
export async function runConnections(
  ctx: RunContext,
  which: { idle: boolean; connect: boolean },
): Promise<{ idle: PerServer<IdleResult>; connect: PerServer<ConnectResult> }> {
  const idle: PerServer<IdleResult> = {};
  const connect: PerServer<ConnectResult> = {};
  for (const kind of CONNECTION_SERVERS.filter((k) => ctx.servers.includes(k))) {
    const label = SERVER_LABEL[kind];
    await withServers(ctx, kind, 1, false, async ([server]) => {
      if (which.idle) {
        try {
          ctx.progress.step(`idle memory · ${label} · ${ctx.cfg.idleConns} subscribed connections`);
          idle[kind] = await measureIdleMemory(ctx, server!);
        } catch (err) {
          ctx.notes.push(`idle memory ${label}: failed: ${errorText(err)}`);
          idle[kind] = null;
        }
        await ctx.subs.closeAll();
      }
      if (which.connect) {
        try {
          ctx.progress.step(`connect rate · ${label} · ${ctx.cfg.connectConns} handshakes`);
          connect[kind] = await measureConnectRate(ctx, server!);
        } catch (err) {
          ctx.notes.push(`connect rate ${label}: failed: ${errorText(err)}`);
          connect[kind] = null;
        }
      }
    }).catch((err: unknown) => {
      ctx.notes.push(`connections ${label}: server failed: ${errorText(err)}`);
      if (which.idle) idle[kind] ??= null;
      if (which.connect) connect[kind] ??= null;
    });
  }
  return { idle, connect };
}
