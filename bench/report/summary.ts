import { C18K_SWITCHBOARDS } from '../config.js';
import type { BenchResults, C18kResult, PacedBy, PerServer, ThroughputResult } from '../results.js';
import type { ServerKind } from '../servers/types.js';
import { pick, ratio } from './pick.js';
import { targetFigures, type TargetFigure } from './targets.js';

export { headlineWindow, ratio } from './pick.js';

/** The headline figures: Switchboard against its peers, and whether the targets are met. */
export interface Summary {
  mode: string;
  fanout_ratio_vs_socketio: number | null;
  p99_ratio_vs_socketio: number | null;
  fanout_ratio_vs_ws_coalesce: number | null;
  idle_kb_per_conn: number | null;
  crossnode_ratio_vs_socketio: number | null;
  many_channels_ratio_vs_socketio: number | null;
  connect_ratio_vs_socketio: number | null;
  fanout_deliveries_per_s: number | null;
  fanout_p99_ms: number | null;
  crossnode_deliveries_per_s: number | null;
  connects_per_s: number | null;
  /** History on (memory, SQLite, Redis) ÷ the coalescing ws reference, at the headline window. */
  fanout_history_ratio_vs_ws_coalesce: Record<HistoryStore, number | null>;
  many_history_ratio_vs_ws_coalesce: Record<HistoryStore, number | null>;
  crossnode_history_ratio_vs_ws_coalesce: number | null;
  c18k_p99_ms: number | null;
  c18k_kb_per_conn: number | null;
  /** Fan-out at the headline window: bytes each delivery cost the clients, and which side set the pace. */
  bytes_per_delivery: PerServer<number>;
  paced_by: PerServer<PacedBy>;
  /** Every target: its figure, the target, whether it is met (null: not measured). */
  target_figures: Record<string, TargetFigure>;
  /** The same, met or not only (null: not measured). */
  targets: Record<string, boolean | null>;
}

export type HistoryStore = 'memory' | 'sqlite' | 'redis';
const HISTORY_KINDS: Record<HistoryStore, ServerKind> = {
  memory: 'switchboard-memory',
  sqlite: 'switchboard-sqlite',
  redis: 'switchboard-redis',
};

function historyRatios(per: PerServer<ThroughputResult>): Record<HistoryStore, number | null> {
  const ref = per['ws-coalesce']?.deliveriesPerSec;
  const out = {} as Record<HistoryStore, number | null>;
  for (const [store, kind] of Object.entries(HISTORY_KINDS) as Array<[HistoryStore, ServerKind]>)
    out[store] = ratio(per[kind]?.deliveriesPerSec, ref);
  return out;
}

function perKind<T>(per: PerServer<ThroughputResult>, f: (t: ThroughputResult) => T): PerServer<T> {
  const out: PerServer<T> = {};
  for (const [k, t] of Object.entries(per) as Array<[ServerKind, ThroughputResult | null]>) if (t) out[k] = f(t);
  return out;
}

/** The Switchboard the 18k-connection scenario ran, if any. */
export function c18kSwitchboard(r: BenchResults): C18kResult | null {
  const kind = C18K_SWITCHBOARDS.find((k) => r.c18k[k] !== undefined);
  return kind ? (r.c18k[kind] ?? null) : null;
}

export function summarize(r: BenchResults): Summary {
  const fan = pick(r.fanout);
  const cross = pick(r.cross);
  const figures = targetFigures(r);
  const targets: Record<string, boolean | null> = {};
  for (const [id, t] of Object.entries(figures)) targets[id] = t.met;
  return {
    mode: r.meta.mode,
    fanout_ratio_vs_socketio: ratio(fan.switchboard?.deliveriesPerSec, fan.socketio?.deliveriesPerSec),
    p99_ratio_vs_socketio: ratio(fan.switchboard?.p99Ms, fan.socketio?.p99Ms),
    fanout_ratio_vs_ws_coalesce: ratio(fan.switchboard?.deliveriesPerSec, fan['ws-coalesce']?.deliveriesPerSec),
    idle_kb_per_conn: r.idle.switchboard?.kbPerConn ?? null,
    crossnode_ratio_vs_socketio: ratio(cross.switchboard?.deliveriesPerSec, cross.socketio?.deliveriesPerSec),
    many_channels_ratio_vs_socketio: ratio(r.many.switchboard?.deliveriesPerSec, r.many.socketio?.deliveriesPerSec),
    connect_ratio_vs_socketio: ratio(r.connect.switchboard?.handshakesPerSec, r.connect.socketio?.handshakesPerSec),
    fanout_deliveries_per_s: fan.switchboard?.deliveriesPerSec ?? null,
    fanout_p99_ms: fan.switchboard?.p99Ms ?? null,
    crossnode_deliveries_per_s: cross.switchboard?.deliveriesPerSec ?? null,
    connects_per_s: r.connect.switchboard?.handshakesPerSec ?? null,
    fanout_history_ratio_vs_ws_coalesce: historyRatios(fan),
    many_history_ratio_vs_ws_coalesce: historyRatios(r.many),
    crossnode_history_ratio_vs_ws_coalesce: ratio(cross['switchboard-redis']?.deliveriesPerSec, cross['ws-coalesce']?.deliveriesPerSec),
    c18k_p99_ms: c18kSwitchboard(r)?.p99Ms ?? null,
    c18k_kb_per_conn: c18kSwitchboard(r)?.kbPerConn ?? null,
    bytes_per_delivery: perKind(fan, (t) => t.bytesPerMsg),
    paced_by: perKind(fan, (t) => t.pacedBy),
    target_figures: figures,
    targets,
  };
}
