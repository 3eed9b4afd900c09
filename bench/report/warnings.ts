import type { BenchResults, PerServer, ThroughputResult } from '../results.js';
import { SERVER_LABEL } from '../scenarios/context.js';
import type { ServerKind } from '../servers/types.js';

/** Other processes using more than this share of one core during a window make it suspect. */
const FOREIGN_LIMIT_PCT = 15;

/**
 * Notes on windows that should not be trusted: other load on the machine, lost in-flight
 * windows, refused publishes, connections the server closed, and figures the load generator
 * (not the server) limited.
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
      if (t.beforeSplit)
        out.push(
          `${where}: the subscriber agent was ${Math.round(t.beforeSplit.subsElu * 100)}% busy (${t.beforeSplit.deliveriesPerSec} deliveries/s); measured again with the subscribers split over ${t.subsAgents} agents`,
        );
      if (t.loadgenLimited)
        out.push(
          `${where}: LIMITED BY THE LOAD GENERATOR (subscriber agent${t.subsAgents > 1 ? 's' : ''} ${Math.round(t.subsElu * 100)}% busy, machine ${t.machineBusyPct}% busy${t.subsAgents === 1 ? ', no core to spare for a second agent' : ''}): the figure is a floor of the server's, not its own`,
        );
    }
  };
  for (const [w, per] of Object.entries(r.fanout)) check(`fan-out in-flight ${w}`, per);
  check('many channels', r.many);
  for (const [w, per] of Object.entries(r.cross)) check(`cross-node in-flight ${w}`, per);
  for (const [w, per] of Object.entries(r.cluster ?? {})) check(`cross-node via Redis Cluster in-flight ${w}`, per);
  for (const [kind, t] of Object.entries(r.c18k) as Array<[ServerKind, BenchResults['c18k'][ServerKind]]>) {
    if (!t) continue;
    const where = `${t.connections} connections ${SERVER_LABEL[kind]}`;
    if (t.foreignCpuPct > FOREIGN_LIMIT_PCT)
      out.push(`${where}: other processes used ${t.foreignCpuPct}% of a core during the window; figures skewed`);
    if (t.closed > 0) out.push(`${where}: the server closed ${t.closed} subscriber connections`);
    if (t.deliveredPct < 99) out.push(`${where}: only ${t.deliveredPct}% of the broadcasts' deliveries arrived within the window`);
    if (t.subsElu > r.meta.config.subsBusyLimit)
      out.push(`${where}: LIMITED BY THE LOAD GENERATOR (busiest agent ${Math.round(t.subsElu * 100)}% busy)`);
  }
  return out;
}

/**
 * Per throughput window, Switchboard's deliveries against the coalescing ws reference's: bytes
 * and load-generator CPU each delivery cost the clients, and which side's event loop set the
 * pace, so the report says whether the server or the clients' reading limited the figure.
 */
export function paceNotes(r: BenchResults): string[] {
  const out: string[] = [];
  const note = (scenario: string, per: PerServer<ThroughputResult>) => {
    const ref = per['ws-coalesce'];
    if (!ref) return;
    for (const [kind, t] of Object.entries(per) as Array<[ServerKind, ThroughputResult | null]>) {
      if (!t || !kind.startsWith('switchboard')) continue;
      out.push(
        `${scenario} ${SERVER_LABEL[kind]}: ${t.bytesPerMsg} B and ${t.subsNsPerDelivery} ns of client CPU per delivery ` +
          `(ws+coalesce ${ref.bytesPerMsg} B, ${ref.subsNsPerDelivery} ns); server ${Math.round(Math.max(...t.nodeElu) * 100)}% / ` +
          `clients ${Math.round(t.subsElu * 100)}% busy: paced by ${t.pacedBy} (ws+coalesce: ${ref.pacedBy})`,
      );
    }
  };
  for (const [w, per] of Object.entries(r.fanout)) note(`pace: fan-out in-flight ${w}`, per);
  note('pace: many channels', r.many);
  for (const [w, per] of Object.entries(r.cross)) note(`pace: cross-node in-flight ${w}`, per);
  for (const [kind, t] of Object.entries(r.c18k) as Array<[ServerKind, BenchResults['c18k'][ServerKind]]>) {
    if (!t) continue;
    out.push(
      `pace: ${t.connections} connections ${SERVER_LABEL[kind]}: ${t.bytesPerMsg} B per delivery; per broadcast the server was busy ` +
        `${t.serverBusyMsPerBroadcast} ms, the busiest of ${t.agents} agents ${t.subsBusyMsPerBroadcast} ms (p99 ${t.p99Ms} ms): paced by ${t.pacedBy}`,
    );
  }
  return out;
}
