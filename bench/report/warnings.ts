import type { BenchResults, PerServer, ThroughputResult } from '../results.js';
import { SERVER_LABEL } from '../scenarios/context.js';
import type { ServerKind } from '../servers/types.js';

/** Other processes using more than this share of one core during a window make it suspect. */
const FOREIGN_LIMIT_PCT = 15;

/**
 * Notes on windows that should not be trusted: other load on the machine, lost in-flight
 * windows, refused publishes, or connections the server closed.
 */
export function measurementWarnings(r: BenchResults): string[] {
  const out: string[] = [];
  const check = (scenario: string, per: PerServer<ThroughputResult>) => {
    for (const [kind, t] of Object.entries(per) as Array<[ServerKind, ThroughputResult | null]>) {
      if (!t) continue;
      const where = `${scenario} ${SERVER_LABEL[kind]}`;
      if (t.foreignCpuPct > FOREIGN_LIMIT_PCT)
        out.push(`${where}: other processes used ${t.foreignCpuPct}% of a core during the window; figures skewed`);
      if (t.stalls > 0) out.push(`${where}: ${t.stalls} in-flight windows were lost and reopened`);
      if (t.errors > 0) out.push(`${where}: ${t.errors} publishes refused`);
      if (t.closed > 0) out.push(`${where}: the server closed ${t.closed} subscriber connections`);
    }
  };
  for (const [w, per] of Object.entries(r.fanout)) check(`fan-out in-flight ${w}`, per);
  check('many channels', r.many);
  for (const [w, per] of Object.entries(r.cross)) check(`cross-node in-flight ${w}`, per);
  for (const [w, per] of Object.entries(r.cluster ?? {})) check(`cross-node via Redis Cluster in-flight ${w}`, per);
  return out;
}
