/**
 * Scenario `collab` (`npm run bench -- --only=collab`): N documents × M editors on Switchboard,
 * Hocuspocus and the y-websocket reference server, one after the other on the same load:
 * - closed loop (saturation): updates delivered per second and edit-to-every-editor latency
 *   (p50, p99) — at saturation that latency is mostly in-flight ÷ throughput;
 * - open loop: the same editors at a fixed offered rate (`collabOpenHz` edits a second each,
 *   below every server's saturation): latency p50/p99 of the servers themselves;
 * - memory per open document (each with one connection and ~1 KB of text).
 * The editors run in `collabAgents` processes (whole documents each), and every window records
 * the busiest agent's event-loop share and the server's CPU per edit: a window whose agent was
 * past `subsBusyLimit` busy is marked "load generator limited" (the figure measures the agents).
 * Splitting the editors and counting each edit (below) make the bench more accurate for every
 * server alike: the same agents, the same load and the same counting for all four.
 */
import { join } from 'node:path';
import type { EventLoopUtilization } from 'node:perf_hooks';
import type { BenchConfig } from '../config.js';
import { Child } from '../proc/child.js';
import { eluBetween, readElu } from '../proc/elu.js';
import type { Progress } from '../report/progress.js';
import type { EditorsReport } from './editors.js';
import type { CollabServerKind } from './server.js';

/** One measurement window over every agent. */
export interface CollabWindow {
  updatesPerSec: number;
  editsPerSec: number;
  p50: number;
  p99: number;
  /** The busiest editors agent's event-loop share (0–1). */
  agentBusy: number;
  /** The server's event-loop share (0–1) and its CPU (user + system) per edit made, in µs. */
  serverBusy: number;
  serverCpuUsPerEdit: number;
  /** The agents, not the server, set the pace (agentBusy past cfg.subsBusyLimit). */
  loadgenLimited: boolean;
  /** Editors that had not converged 20 s after the window. */
  diverged: number;
}

export interface CollabResult {
  updatesPerSec: number;
  p50: number;
  p99: number;
  diverged: number;
  memoryPerDocKb: number;
  closed?: CollabWindow;
  /** Open loop at the fixed offered rate; `skipped` edits a server fell too far behind to take. */
  open?: CollabWindow & { offeredEditsPerSec: number; skipped: number };
}

export const COLLAB_SERVERS: readonly CollabServerKind[] = ['switchboard', 'switchboard-memory', 'hocuspocus', 'yws-ref'];
/** Each row says what it persists: only Switchboard's first row stores (every update, durably, before it is forwarded). */
const LABEL: Record<CollabServerKind, string> = {
  switchboard: 'Switchboard (SQLite, durable per update)',
  'switchboard-memory': 'Switchboard (memory)',
  hocuspocus: 'Hocuspocus 3.4 (memory)',
  'yws-ref': 'y-websocket ref (memory)',
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (v: number, digits: number): number => Math.round(v * 10 ** digits) / 10 ** digits;

export async function runCollab(
  cfg: BenchConfig,
  progress: Progress,
  notes: string[],
  cpuProfDir?: string,
): Promise<Record<string, CollabResult | null>> {
  const out: Record<string, CollabResult | null> = {};
  // The same editors agents for every server (they close their sockets between them).
  const agents = Array.from({ length: Math.max(1, cfg.collabAgents) }, (_, i) =>
    Child.spawn(`collab-editors#${i}`, 'collab/editors.ts', [], cpuProfDir ? { cpuProf: join(cpuProfDir, 'agents') } : {}),
  );
  try {
    for (const kind of COLLAB_SERVERS) await runOne(kind, agents, cfg, progress, notes, out, cpuProfDir);
  } finally {
    await Promise.allSettled(agents.map((a) => a.kill(cpuProfDir ? 5000 : 1500)));
  }
  return out;
}

/** Documents 0…docs−1 dealt round-robin over the agents (each document wholly in one). */
function openAll(agents: Child[], spec: { url: string; dialect: string; editors: number; prefix: string }, docs: number, timeoutMs: number): Promise<unknown> {
  return Promise.all(
    agents.map((a, k) => {
      const mine = Array.from({ length: docs }, (_, d) => d).filter((d) => d % agents.length === k);
      return mine.length ? a.call('open', { ...spec, docs: mine }, timeoutMs) : Promise.resolve(0);
    }),
  );
}

/** Starts the load, waits the warmup, measures one window, stops and lets every editor converge. */
async function measureWindow(cfg: BenchConfig, server: Child, agents: Child[], load: { inFlight?: number; perEditorHz?: number }): Promise<CollabWindow & { skipped: number }> {
  await Promise.all(agents.map((a) => a.call('start', load)));
  await sleep(cfg.warmupMs);
  await Promise.all(agents.map((a) => a.call('reset')));
  const cpu0 = server.cpuSeconds();
  const [srv0, ...ag0] = await Promise.all([readElu(server), ...agents.map((a) => readElu(a))]);
  await sleep(cfg.windowMs);
  const reps = await Promise.all(agents.map((a) => a.call<EditorsReport>('report', undefined, 60_000)));
  const cpuS = server.cpuSeconds() - cpu0;
  const [srv1, ...ag1] = await Promise.all([readElu(server), ...agents.map((a) => readElu(a))]);
  const settled = await Promise.all(agents.map((a) => a.call<{ diverged: number }>('settle', { timeoutMs: 20_000 }, 60_000)));
  const seconds = Math.max(...reps.map((r) => r.elapsedMs)) / 1000;
  const all: number[] = [];
  for (const r of reps) for (const l of r.latencies) all.push(l);
  all.sort((a, b) => a - b);
  const pct = (p: number): number => (all.length ? all[Math.min(all.length - 1, Math.floor(p * all.length))]! : Number.NaN);
  const delivered = reps.reduce((s, r) => s + r.delivered, 0);
  const edits = reps.reduce((s, r) => s + r.edits, 0);
  const agentBusy = Math.max(...agents.map((_, i) => eluBetween(ag0[i] as EventLoopUtilization, ag1[i] as EventLoopUtilization)));
  return {
    updatesPerSec: Math.round(delivered / seconds),
    editsPerSec: Math.round(edits / seconds),
    p50: round(pct(0.5), 1),
    p99: round(pct(0.99), 1),
    agentBusy: round(agentBusy, 2),
    serverBusy: round(eluBetween(srv0 as EventLoopUtilization, srv1 as EventLoopUtilization), 2),
    serverCpuUsPerEdit: edits ? round((cpuS / edits) * 1e6, 1) : 0,
    loadgenLimited: agentBusy > cfg.subsBusyLimit,
    diverged: settled.reduce((s, r) => s + r.diverged, 0),
    skipped: reps.reduce((s, r) => s + r.skipped, 0),
  };
}

function describe(w: CollabWindow): string {
  return (
    `${w.updatesPerSec} updates/s (${w.editsPerSec} edits/s), p50 ${w.p50} ms, p99 ${w.p99} ms; busiest editors agent ${Math.round(w.agentBusy * 100)}% busy, ` +
    `server event loop ${Math.round(w.serverBusy * 100)}% busy, server CPU ${w.serverCpuUsPerEdit} µs per edit` +
    (w.loadgenLimited ? ' — LOAD GENERATOR LIMITED' : '')
  );
}

async function runOne(
  kind: CollabServerKind,
  agents: Child[],
  cfg: BenchConfig,
  progress: Progress,
  notes: string[],
  out: Record<string, CollabResult | null>,
  cpuProfDir: string | undefined,
): Promise<void> {
  const server = Child.spawn(`collab-${kind}`, 'collab/server.ts', [], { exposeGc: true, ...(cpuProfDir ? { cpuProf: cpuProfDir } : {}) });
  try {
    const { port } = await server.call<{ port: number }>('start', { kind });
    const url = kind.startsWith('switchboard') ? `ws://127.0.0.1:${port}/collab` : `ws://127.0.0.1:${port}`;
    const dialect = kind === 'hocuspocus' ? 'hocus' : 'yws';
    const docs = cfg.collabDocs;
    const editors = cfg.collabEditors;
    progress.step(`collab · ${LABEL[kind]} · ${docs} docs × ${editors} editors, closed loop`);
    await openAll(agents, { url, dialect, editors, prefix: 'load' }, docs, 60_000);
    const closed = await measureWindow(cfg, server, agents, { inFlight: cfg.collabInFlight });
    progress.step(`collab · ${LABEL[kind]} · open loop, ${cfg.collabOpenHz} edits/s per editor`);
    const { skipped, ...open } = await measureWindow(cfg, server, agents, { perEditorHz: cfg.collabOpenHz });
    await Promise.all(agents.map((a) => a.call('close')));
    progress.step(`collab · ${LABEL[kind]} · memory of ${cfg.collabMemoryDocs} open documents`);
    const before = await server.call<{ heapUsed: number; rss: number }>('memory');
    await openAll(agents, { url, dialect, editors: 1, prefix: 'mem' }, cfg.collabMemoryDocs, 120_000);
    const after = await server.call<{ heapUsed: number; rss: number }>('memory');
    await Promise.all(agents.map((a) => a.call('close')));
    const diverged = closed.diverged + open.diverged;
    if (diverged > 0) notes.push(`collab ${LABEL[kind]}: ${diverged} editors had not converged 20 s after a window`);
    const { skipped: _closedSkipped, ...closedW } = closed;
    const offeredEditsPerSec = cfg.collabOpenHz * docs * editors;
    notes.push(`collab ${LABEL[kind]}, closed loop (in-flight ${cfg.collabInFlight}): ${describe(closedW)}`);
    notes.push(
      `collab ${LABEL[kind]}, open loop (${offeredEditsPerSec} edits/s offered): ${describe(open)}` +
        (skipped > 0 ? `; ${skipped} edits skipped (the server fell behind)` : ''),
    );
    out[kind] = {
      updatesPerSec: closed.updatesPerSec,
      p50: closed.p50,
      p99: closed.p99,
      diverged,
      memoryPerDocKb: Math.round(((after.heapUsed - before.heapUsed) / cfg.collabMemoryDocs / 1024) * 10) / 10,
      closed: closedW,
      open: { ...open, offeredEditsPerSec, skipped },
    };
  } catch (err) {
    notes.push(`collab ${LABEL[kind]}: failed: ${err instanceof Error ? err.message : String(err)}`);
    out[kind] = null;
    await Promise.allSettled(agents.map((a) => a.call('close')));
  } finally {
    await server.kill(cpuProfDir ? 5000 : 1500);
  }
}

/**
 * The collab table, with ratios against Switchboard in the peers' persistence class (memory):
 * Hocuspocus without a persistence extension and the reference server keep documents in memory.
 */
export function renderCollab(results: Record<string, CollabResult | null>): string {
  const sb = results['switchboard-memory'] ?? results.switchboard;
  const rows = [
    [
      'collab (N docs × M editors)',
      'updates/s',
      'p50 ms',
      'p99 ms',
      'open-loop p50 ms',
      'open-loop p99 ms',
      'heap KB / open doc',
      'SB (memory) updates/s ×',
      'SB (memory) p99 ×',
      'SB (memory) open-loop p99 ×',
    ],
    ...COLLAB_SERVERS.map((k) => {
      const r = results[k];
      if (!r) return [LABEL[k], 'failed', '', '', '', '', '', '', '', ''];
      const ratio = (a: number | undefined, b: number | undefined): string => (a && b ? (a / b).toFixed(2) : '');
      const peer = !k.startsWith('switchboard');
      const limited = (w: CollabWindow | undefined): string => (w?.loadgenLimited ? ' (load generator limited)' : '');
      return [
        LABEL[k],
        String(r.updatesPerSec) + limited(r.closed),
        String(r.p50),
        String(r.p99),
        r.open ? String(r.open.p50) : '',
        r.open ? String(r.open.p99) + limited(r.open) : '',
        String(r.memoryPerDocKb),
        peer ? ratio(sb?.updatesPerSec, r.updatesPerSec) : '',
        peer ? ratio(r.p99, sb?.p99) : '',
        peer ? ratio(r.open?.p99, sb?.open?.p99) : '',
      ];
    }),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')).join('\n');
}
