import type { RunningServer, ServerOptions } from './types.js';
import { importHub } from './built.js';

/**
 * Switchboard for the codec and game scenarios: `game` is a latest-value namespace with client
 * events (the game room), `codec` an ordinary one with history on (the codec comparison). The
 * command and byte rates are opened up for the one publisher of the codec scenario; the game's
 * players stay under the default client-event rate (60/s) at 20 positions/s.
 */
export async function start(o: ServerOptions): Promise<RunningServer> {
  const { createHub } = await importHub();
  const hub = createHub({
    auth: { secret: o.secret },
    namespaces: {
      game: { delivery: 'latest', clientEvents: true, history: { size: 100 } },
      codec: { clientPublish: 'any', history: { size: 100 } },
    },
    limits: {
      maxConnections: 1_000_000,
      maxConnectionsPerUser: 1_000_000,
      connectionRatePerIp: { perSecond: 1_000_000, burst: 1_000_000 },
      commandRate: { perSecond: 1_000_000, burst: 1_000_000 },
      publishBytesRate: { perSecond: 1e12, burst: 1e12 },
      channelPublishBytesRate: { perSecond: 1e12, burst: 1e12 },
    },
  });
  const { port } = await hub.listen(0, '127.0.0.1');
  return { port };
}
