import type { BenchResults, PerServer, ThroughputResult } from '../results.js';

/** The headline figures: Switchboard against its peers, and whether the brief's targets are met. */
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
  /** null: not measured. */
  targets: {
    fanout_4x_socketio: boolean | null;
    p99_third_of_socketio: boolean | null;
    fanout_0_9x_ws_coalesce: boolean | null;
    idle_12kb_per_conn: boolean | null;
    crossnode_4x_socketio: boolean | null;
  };
}

export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return Math.round((a / b) * 100) / 100;
}

/** The in-flight window the headline uses: 20 (the brief's reference runs), else the first. */
export function headlineWindow(byWindow: Record<string, unknown>): string | undefined {
  const keys = Object.keys(byWindow);
  return keys.includes('20') ? '20' : keys[0];
}

function pick(byWindow: Record<string, PerServer<ThroughputResult>>): PerServer<ThroughputResult> {
  const w = headlineWindow(byWindow);
  return w === undefined ? {} : (byWindow[w] ?? {});
}

const atLeast = (v: number | null, t: number) => (v === null ? null : v >= t);
const atMost = (v: number | null, t: number) => (v === null ? null : v <= t);

export function summarize(r: BenchResults): Summary {
  const fan = pick(r.fanout);
  const cross = pick(r.cross);
  const fanoutRatio = ratio(fan.switchboard?.deliveriesPerSec, fan.socketio?.deliveriesPerSec);
  const p99Ratio = ratio(fan.switchboard?.p99Ms, fan.socketio?.p99Ms);
  const vsCoalesce = ratio(fan.switchboard?.deliveriesPerSec, fan['ws-coalesce']?.deliveriesPerSec);
  const idleKb = r.idle.switchboard?.kbPerConn ?? null;
  const crossRatio = ratio(cross.switchboard?.deliveriesPerSec, cross.socketio?.deliveriesPerSec);
  return {
    mode: r.meta.mode,
    fanout_ratio_vs_socketio: fanoutRatio,
    p99_ratio_vs_socketio: p99Ratio,
    fanout_ratio_vs_ws_coalesce: vsCoalesce,
    idle_kb_per_conn: idleKb,
    crossnode_ratio_vs_socketio: crossRatio,
    many_channels_ratio_vs_socketio: ratio(r.many.switchboard?.deliveriesPerSec, r.many.socketio?.deliveriesPerSec),
    connect_ratio_vs_socketio: ratio(r.connect.switchboard?.handshakesPerSec, r.connect.socketio?.handshakesPerSec),
    fanout_deliveries_per_s: fan.switchboard?.deliveriesPerSec ?? null,
    fanout_p99_ms: fan.switchboard?.p99Ms ?? null,
    crossnode_deliveries_per_s: cross.switchboard?.deliveriesPerSec ?? null,
    connects_per_s: r.connect.switchboard?.handshakesPerSec ?? null,
    targets: {
      fanout_4x_socketio: atLeast(fanoutRatio, 4),
      p99_third_of_socketio: atMost(p99Ratio, 1 / 3),
      fanout_0_9x_ws_coalesce: atLeast(vsCoalesce, 0.9),
      idle_12kb_per_conn: atMost(idleKb, 12),
      crossnode_4x_socketio: atLeast(crossRatio, 4),
    },
  };
}
