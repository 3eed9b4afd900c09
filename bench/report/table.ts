import { ALL_SERVERS } from '../config.js';
import type { BenchResults, C18kResult, PacedBy, PerServer, ThroughputResult } from '../results.js';
import { SERVER_LABEL } from '../scenarios/context.js';
import type { ServerKind } from '../servers/types.js';
import { fmtNum, fmtRate, fmtRatio } from './format.js';
import { ratio } from './pick.js';

interface Row {
  figure: string;
  values: PerServer<number>;
  format: (v: number | null | undefined) => string;
  /** Ratios are shown for figures where Switchboard/peer means something. */
  ratios: boolean;
}

/** The ratio columns: numerator ÷ denominator. */
const RATIOS: Array<[ServerKind, ServerKind]> = [
  ['switchboard', 'socketio'],
  ['switchboard', 'ws'],
  ['switchboard', 'ws-coalesce'],
  ['switchboard-sqlite', 'ws-coalesce'],
  ['switchboard-sqlite', 'switchboard'],
  ['switchboard-redis', 'ws-coalesce'],
];

/** Which side set the pace, as a number for the table (its format turns it back into words). */
const PACED: PacedBy[] = ['neither', 'server', 'load generator', 'both'];
const fmtPaced = (v: number | null | undefined) => (v == null ? '–' : (PACED[v] ?? '?'));

function throughputRows(title: string, per: PerServer<ThroughputResult>): Row[] {
  const col = (f: (t: ThroughputResult) => number | null): PerServer<number> => {
    const out: PerServer<number> = {};
    for (const k of ALL_SERVERS) {
      const t = per[k];
      if (t !== undefined) out[k] = t === null ? null : f(t);
    }
    return out;
  };
  return [
    { figure: `${title}: deliveries/s`, values: col((t) => t.deliveriesPerSec), format: fmtRate, ratios: true },
    { figure: `${title}: p50 ms`, values: col((t) => t.p50Ms), format: (v) => fmtNum(v), ratios: true },
    { figure: `${title}: p99 ms`, values: col((t) => t.p99Ms), format: (v) => fmtNum(v), ratios: true },
    { figure: `${title}: max ms`, values: col((t) => t.maxMs), format: (v) => fmtNum(v), ratios: false },
    {
      figure: `${title}: server CPU ns per delivery`,
      values: col((t) => t.serverNsPerDelivery),
      format: (v) => fmtNum(v, 0),
      ratios: true,
    },
    { figure: `${title}: messages per frame`, values: col((t) => t.msgsPerFrame), format: (v) => fmtNum(v), ratios: false },
    { figure: `${title}: bytes per message`, values: col((t) => t.bytesPerMsg), format: (v) => fmtNum(v, 0), ratios: true },
    {
      figure: `${title}: server CPU % (one core = 100)`,
      values: col((t) => (t.serverCpuS / t.windowS) * 100),
      format: (v) => fmtNum(v, 0),
      ratios: false,
    },
    {
      figure: `${title}: server event loop busy %`,
      values: col((t) => Math.max(...t.nodeElu) * 100),
      format: (v) => fmtNum(v, 0),
      ratios: false,
    },
    {
      figure: `${title}: subscriber load-gen loop busy %`,
      values: col((t) => t.subsElu * 100),
      format: (v) => fmtNum(v, 0),
      ratios: false,
    },
    { figure: `${title}: subscriber agents`, values: col((t) => t.subsAgents), format: (v) => fmtNum(v, 0), ratios: false },
    {
      figure: `${title}: load-gen CPU ns per delivery (client read cost)`,
      values: col((t) => t.subsNsPerDelivery),
      format: (v) => fmtNum(v, 0),
      ratios: true,
    },
    { figure: `${title}: paced by`, values: col((t) => PACED.indexOf(t.pacedBy)), format: fmtPaced, ratios: false },
    {
      figure: `${title}: machine busy % (both cores)`,
      values: col((t) => t.machineBusyPct),
      format: (v) => fmtNum(v, 0),
      ratios: false,
    },
    {
      figure: `${title}: load-gen CPU % (subs + pub)`,
      values: col((t) => ((t.subsCpuS + t.pubCpuS) / t.windowS) * 100),
      format: (v) => fmtNum(v, 0),
      ratios: false,
    },
  ];
}

function c18kRows(r: BenchResults): Row[] {
  const c = r.meta.config;
  const title = `${c.c18kConns} conns, 1 broadcast/${c.c18kIntervalMs} ms`;
  const col = (f: (t: C18kResult) => number | null): PerServer<number> => {
    const out: PerServer<number> = {};
    for (const k of ALL_SERVERS) {
      const t = r.c18k[k];
      if (t !== undefined) out[k] = t === null ? null : f(t);
    }
    return out;
  };
  const num = (d: number) => (v: number | null | undefined) => fmtNum(v, d);
  return [
    { figure: `${title}: p50 ms`, values: col((t) => t.p50Ms), format: num(1), ratios: true },
    { figure: `${title}: p99 ms`, values: col((t) => t.p99Ms), format: num(1), ratios: true },
    { figure: `${title}: max ms`, values: col((t) => t.maxMs), format: num(1), ratios: false },
    { figure: `${title}: server RSS KB/conn`, values: col((t) => t.kbPerConn), format: num(1), ratios: true },
    { figure: `${title}: server RSS MB`, values: col((t) => t.rssMb), format: num(0), ratios: false },
    { figure: `${title}: delivered %`, values: col((t) => t.deliveredPct), format: num(1), ratios: false },
    { figure: `${title}: bytes per message`, values: col((t) => t.bytesPerMsg), format: num(0), ratios: false },
    { figure: `${title}: server CPU %`, values: col((t) => t.serverCpuPct), format: num(0), ratios: false },
    { figure: `${title}: busiest load-gen agent loop busy %`, values: col((t) => t.subsElu * 100), format: num(0), ratios: false },
    { figure: `${title}: server busy ms per broadcast`, values: col((t) => t.serverBusyMsPerBroadcast), format: num(1), ratios: true },
    {
      figure: `${title}: busiest agent busy ms per broadcast`,
      values: col((t) => t.subsBusyMsPerBroadcast),
      format: num(1),
      ratios: false,
    },
    { figure: `${title}: paced by`, values: col((t) => PACED.indexOf(t.pacedBy)), format: fmtPaced, ratios: false },
    { figure: `${title}: seconds to open`, values: col((t) => t.openS), format: num(1), ratios: false },
  ];
}

function rows(r: BenchResults): Row[] {
  const out: Row[] = [];
  for (const [w, per] of Object.entries(r.fanout))
    out.push(...throughputRows(`Fan-out ${r.meta.config.fanoutSubs} subs, in-flight ${w}`, per));
  if (Object.keys(r.many).length > 0) {
    const c = r.meta.config;
    out.push(...throughputRows(`Many channels ${c.manyConns}×${c.manyPerConn}/${c.manyChannels}, in-flight ${c.manyInFlight}`, r.many));
  }
  const col = <T>(per: PerServer<T>, f: (t: T) => number): PerServer<number> => {
    const o: PerServer<number> = {};
    for (const k of ALL_SERVERS) if (per[k] !== undefined) o[k] = per[k] === null ? null : f(per[k] as T);
    return o;
  };
  if (Object.keys(r.idle).length > 0) {
    out.push({
      figure: `Idle memory @ ${r.meta.config.idleConns} conns: KB/conn (RSS)`,
      values: col(r.idle, (t) => t.kbPerConn),
      format: (v) => fmtNum(v),
      ratios: true,
    });
  }
  if (Object.keys(r.connect).length > 0) {
    out.push({
      figure: `Connect rate (JWT): handshakes/s`,
      values: col(r.connect, (t) => t.handshakesPerSec),
      format: fmtRate,
      ratios: true,
    });
  }
  for (const [w, per] of Object.entries(r.cross)) out.push(...throughputRows(`Cross-node via Redis, in-flight ${w}`, per));
  for (const [w, per] of Object.entries(r.cluster ?? {})) out.push(...throughputRows(`Cross-node via Redis Cluster (3 masters), in-flight ${w}`, per));
  for (const [label, t] of Object.entries(r.workers ?? {})) {
    const one = (f: (x: NonNullable<typeof t>) => number | null): PerServer<number> => ({ switchboard: t ? f(t) : null });
    out.push(
      { figure: `serve --workers: ${label}: deliveries/s`, values: one((x) => x.deliveriesPerSec), format: fmtRate, ratios: false },
      { figure: `serve --workers: ${label}: p99 ms`, values: one((x) => x.p99Ms), format: (v) => fmtNum(v), ratios: false },
      { figure: `serve --workers: ${label}: server CPU %`, values: one((x) => (x.serverCpuS / x.windowS) * 100), format: (v) => fmtNum(v, 0), ratios: false },
      { figure: `serve --workers: ${label}: server CPU ns/delivery`, values: one((x) => x.serverNsPerDelivery), format: (v) => fmtNum(v, 0), ratios: false },
    );
  }
  if (Object.keys(r.c18k).length > 0) out.push(...c18kRows(r));
  return out;
}

/** The results as a plain-text table: one row per figure, one column per server, then Switchboard/peer ratios. */
export function renderTable(r: BenchResults): string {
  const all = rows(r);
  // Only the servers and ratios this run measured get a column.
  const kinds = ALL_SERVERS.filter((k) => all.some((row) => row.values[k] !== undefined));
  const ratios = RATIOS.filter(([a, b]) => kinds.includes(a) && kinds.includes(b));
  const short = (k: ServerKind) => (k === 'switchboard' ? 'SB' : SERVER_LABEL[k]);
  const head = ['Figure', ...kinds.map((k) => SERVER_LABEL[k]), ...ratios.map(([a, b]) => `${short(a)}/${short(b)}`)];
  const body = all.map((row) => [
    row.figure,
    ...kinds.map((k) => (row.values[k] === undefined ? '' : row.format(row.values[k]))),
    ...ratios.map(([a, b]) =>
      row.ratios && row.values[a] !== undefined && row.values[b] !== undefined ? fmtRatio(ratio(row.values[a], row.values[b])) : '',
    ),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
