import type { PerServer, ThroughputResult } from '../results.js';
import { errorText, SERVER_LABEL, type RunContext } from './context.js';
import { measureWindows, openLoad } from './measure.js';
import { withServers } from './servers.js';

/**
 * Scenario 2, many channels: `manyConns` connections, each subscribed to `manyPerConn` of
 * `manyChannels` channels (so every channel has manyConns·manyPerConn/manyChannels
 * subscribers); the publisher goes round the channels with `manyInFlight` in flight.
 */
export async function runManyChannels(ctx: RunContext): Promise<PerServer<ThroughputResult>> {
  const { manyConns, manyChannels, manyPerConn, manyInFlight } = ctx.cfg;
  const channels = Array.from({ length: manyChannels }, (_, i) => `room.${i}`);
  const out: PerServer<ThroughputResult> = {};
  for (const kind of ctx.servers) {
    const label = SERVER_LABEL[kind];
    try {
      await withServers(ctx, kind, 1, false, async ([server]) => {
        const open = async (agents: number) => {
          ctx.progress.step(`many channels · ${label} · opening ${manyConns} connections × ${manyPerConn} channels`);
          await openLoad(
            ctx,
            { subNode: server!, pubNode: server!, count: manyConns, channels, perConn: manyPerConn, userPrefix: 'm' },
            agents,
          );
          ctx.progress.step(`many channels · ${label} · in-flight ${manyInFlight} · measuring`);
        };
        await measureWindows(ctx, [server!], [manyInFlight], open, (_w, r) => {
          out[kind] = r;
        });
      });
    } catch (err) {
      ctx.notes.push(`many channels ${label}: failed: ${errorText(err)}`);
      out[kind] ??= null;
    }
  }
  return out;
}
