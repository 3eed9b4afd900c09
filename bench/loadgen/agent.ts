/**
 * A load-generator process, driven by the orchestrator over IPC. One agent holds the
 * subscribers, another the publisher, so neither starves the other of its event loop.
 */
import { performance } from 'node:perf_hooks';
import { serveRpc } from '../proc/rpc.js';
import { Publisher, type PublisherSpec } from './publisher.js';
import { SubscriberPool, type OpenSpec } from './subscribers.js';

const pool = new SubscriberPool();
let publisher: Publisher | undefined;

serveRpc({
  elu: () => performance.eventLoopUtilization(),
  open: (spec: OpenSpec) => pool.open(spec),
  reset: () => pool.reset(),
  delivered: () => pool.delivered,
  report: (opts?: { raw?: boolean }) => pool.report(opts),
  closeAll: () => pool.closeAll(),
  pubOpen: async (spec: PublisherSpec) => {
    publisher?.close();
    publisher = new Publisher();
    await publisher.open(spec);
    return {};
  },
  pubStart: ({ inFlight }: { inFlight: number }) => publisher?.start(inFlight),
  pubPaced: ({ intervalMs }: { intervalMs: number }) => publisher?.startPaced(intervalMs),
  pubStats: () => publisher?.currentStats(),
  pubStop: ({ drainMs }: { drainMs: number }) => publisher?.stop(drainMs),
  pubClose: () => {
    publisher?.close();
    publisher = undefined;
  },
});
