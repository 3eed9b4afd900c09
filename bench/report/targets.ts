import type { BenchResults, PerServer, ThroughputResult } from '../results.js';
import type { ServerKind } from '../servers/types.js';
import { C18K_SWITCHBOARDS } from '../config.js';
import { SERVER_LABEL } from '../scenarios/context.js';
import { headlineWindow, pick, ratio } from './pick.js';

/** One target of the brief or of the issue "Performance as users run it", with its figure. */
export interface TargetFigure {
  /** What is compared, in words. */
  figure: string;
  /** The ratio or amount measured; null when not measured (or it failed, see the notes). */
  value: number | null;
  /** The bound, e.g. ">= 1.0" or "<= 12". */
  target: string;
  met: boolean | null;
  /** A window of this figure was limited by the load generator: the figure is not the server's. */
  loadgenLimited: boolean;
}

type Bound = { op: '>=' | '<='; bound: number };
const atLeast = (bound: number): Bound => ({ op: '>=', bound });
const atMost = (bound: number): Bound => ({ op: '<=', bound });

function figure(what: string, value: number | null, b: Bound, windows: Array<ThroughputResult | null | undefined> = []): TargetFigure {
  return {
    figure: what,
    value,
    target: `${b.op} ${Math.round(b.bound * 100) / 100}`,
    met: value === null ? null : b.op === '>=' ? value >= b.bound : value <= b.bound,
    loadgenLimited: windows.some((t) => t?.loadgenLimited === true),
  };
}

/** Rate and p99 of `a` against `b` in one window. */
function vs(per: PerServer<ThroughputResult>, a: ServerKind, b: ServerKind) {
  const ta = per[a];
  const tb = per[b];
  return {
    rate: ratio(ta?.deliveriesPerSec, tb?.deliveriesPerSec),
    p99: ratio(ta?.p99Ms, tb?.p99Ms),
    windows: [ta, tb],
  };
}

/**
 * Every target with its figure. The brief's (Switchboard with history off against Socket.IO
 * and the coalescing ws reference) and the issue's, measured as users run Switchboard: history
 * in SQLite (the `switchboard serve` default) in fan-out and many channels, history in Redis
 * across nodes, and 18k connections on one node.
 */
export function targetFigures(r: BenchResults): Record<string, TargetFigure> {
  const out: Record<string, TargetFigure> = {};
  const fan = pick(r.fanout);
  const fw = headlineWindow(r.fanout) ?? r.meta.config.fanoutInFlight[0];
  const cross = pick(r.cross);
  const cw = headlineWindow(r.cross) ?? r.meta.config.crossInFlight[0];

  const sio = vs(fan, 'switchboard', 'socketio');
  out.fanout_4x_socketio = figure(`fan-out in-flight ${fw}: Switchboard (history off) ÷ Socket.IO`, sio.rate, atLeast(4), sio.windows);
  out.p99_third_of_socketio = figure(
    `fan-out in-flight ${fw}: p99 Switchboard (history off) ÷ Socket.IO`,
    sio.p99,
    atMost(1 / 3),
    sio.windows,
  );
  const co = vs(fan, 'switchboard', 'ws-coalesce');
  out.fanout_0_9x_ws_coalesce = figure(
    `fan-out in-flight ${fw}: Switchboard (history off) ÷ ws+coalesce`,
    co.rate,
    atLeast(0.9),
    co.windows,
  );
  out.idle_12kb_per_conn = figure(
    'idle memory: Switchboard KB per subscribed connection',
    r.idle.switchboard?.kbPerConn ?? null,
    atMost(12),
  );
  const xs = vs(cross, 'switchboard', 'socketio');
  out.crossnode_4x_socketio = figure(`cross-node in-flight ${cw}: Switchboard (history off) ÷ Socket.IO`, xs.rate, atLeast(4), xs.windows);

  for (const [w, per] of Object.entries(r.fanout)) {
    const ref = vs(per, 'switchboard-sqlite', 'ws-coalesce');
    out[`fanout_sqlite_1x_ws_coalesce_if${w}`] = figure(
      `fan-out in-flight ${w}: Switchboard history in SQLite ÷ ws+coalesce`,
      ref.rate,
      atLeast(1.0),
      ref.windows,
    );
    out[`fanout_sqlite_p99_1_1x_ws_coalesce_if${w}`] = figure(
      `fan-out in-flight ${w}: p99 Switchboard history in SQLite ÷ ws+coalesce`,
      ref.p99,
      atMost(1.1),
      ref.windows,
    );
    const own = vs(per, 'switchboard-sqlite', 'switchboard');
    out[`fanout_sqlite_0_9x_history_off_if${w}`] = figure(
      `fan-out in-flight ${w}: Switchboard history in SQLite ÷ Switchboard history off`,
      own.rate,
      atLeast(0.9),
      own.windows,
    );
  }
  const many = vs(r.many, 'switchboard-sqlite', 'ws-coalesce');
  out.many_sqlite_1_1x_ws_coalesce = figure(
    'many channels: Switchboard history in SQLite ÷ ws+coalesce',
    many.rate,
    atLeast(1.1),
    many.windows,
  );
  const xr = vs(cross, 'switchboard-redis', 'ws-coalesce');
  out.crossnode_redis_1x_ws_coalesce = figure(
    `cross-node in-flight ${cw}: Switchboard history in Redis ÷ ws+ioredis`,
    xr.rate,
    atLeast(1.0),
    xr.windows,
  );
  const xo = vs(cross, 'switchboard', 'ws-coalesce');
  out.crossnode_history_off_1x_ws_coalesce = figure(
    `cross-node in-flight ${cw}: Switchboard history off ÷ ws+ioredis`,
    xo.rate,
    atLeast(1.0),
    xo.windows,
  );

  const sb = C18K_SWITCHBOARDS.find((k) => r.c18k[k] !== undefined);
  const c = sb ? r.c18k[sb] : undefined;
  const cref = r.c18k['ws-coalesce'];
  const n = r.meta.config.c18kConns;
  const limited = (c?.subsElu ?? 0) > r.meta.config.subsBusyLimit || (cref?.subsElu ?? 0) > r.meta.config.subsBusyLimit;
  out.c18k_p99_1_2x_ws_coalesce = {
    ...figure(`${n} connections: p99 ${sb ? SERVER_LABEL[sb] : 'Switchboard'} ÷ ws+coalesce`, ratio(c?.p99Ms, cref?.p99Ms), atMost(1.2)),
    loadgenLimited: limited,
  };
  out.c18k_12kb_per_conn = {
    ...figure(`${n} connections: ${sb ? SERVER_LABEL[sb] : 'Switchboard'} server RSS KB per connection`, c?.kbPerConn ?? null, atMost(12)),
    loadgenLimited: limited,
  };
  return out;
}
