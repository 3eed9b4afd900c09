/**
 * Scenario `collab` (`npm run bench -- --only=collab`): N documents × M editors on Switchboard,
 * Hocuspocus and the y-websocket reference server, one after the other on the same load:
 * updates delivered per second, edit-to-every-editor latency (p50, p99), and memory per open
 * document (each with one connection and ~1 KB of text).
 */
import type { BenchConfig } from '../config.js';
import { Child } from '../proc/child.js';
import type { Progress } from '../report/progress.js';
import type { CollabServerKind } from './server.js';

export interface CollabResult {
  updatesPerSec: number;
  p50: number;
  p99: number;
  diverged: number;
  memoryPerDocKb: number;
}

export const COLLAB_SERVERS: readonly CollabServerKind[] = ['switchboard', 'switchboard-memory', 'hocuspocus', 'yws-ref'];
/** Each row says what it persists: only Switchboard's first row stores (every update, durably, before it is forwarded). */
const LABEL: Record<CollabServerKind, string> = {
  switchboard: 'Switchboard (SQLite, durable per update)',
  'switchboard-memory': 'Switchboard (memory)',
  hocuspocus: 'Hocuspocus 3.4 (memory)',
  'yws-ref': 'y-websocket ref (memory)',
};

export async function runCollab(
  cfg: BenchConfig,
  progress: Progress,
  notes: string[],
  cpuProfDir?: string,
): Promise<Record<string, CollabResult | null>> {
  const out: Record<string, CollabResult | null> = {};
  // One editors process for every server (it closes its sockets between them).
  const editors = Child.spawn('collab-editors', 'collab/editors.ts');
  try {
    for (const kind of COLLAB_SERVERS) await runOne(kind, editors, cfg, progress, notes, out, cpuProfDir);
  } finally {
    await editors.kill();
  }
  return out;
}

async function runOne(
  kind: CollabServerKind,
  editors: Child,
  cfg: BenchConfig,
  progress: Progress,
  notes: string[],
  out: Record<string, CollabResult | null>,
  cpuProfDir: string | undefined,
): Promise<void> {
  {
    const server = Child.spawn(`collab-${kind}`, 'collab/server.ts', [], { exposeGc: true, ...(cpuProfDir ? { cpuProf: cpuProfDir } : {}) });
    try {
      const { port } = await server.call<{ port: number }>('start', { kind });
      const url = kind.startsWith('switchboard') ? `ws://127.0.0.1:${port}/collab` : `ws://127.0.0.1:${port}`;
      const dialect = kind === 'hocuspocus' ? 'hocus' : 'yws';
      progress.step(`collab · ${LABEL[kind]} · ${cfg.collabDocs} docs × ${cfg.collabEditors} editors`);
      await editors.call('open', { url, dialect, docs: cfg.collabDocs, editors: cfg.collabEditors, prefix: 'load' }, 60_000);
      const r = await editors.call<Record<string, number>>(
        'run',
        { warmupMs: cfg.warmupMs, windowMs: cfg.windowMs, inFlight: cfg.collabInFlight, dialect },
        cfg.windowMs + cfg.warmupMs + 60_000,
      );
      await editors.call('close');
      progress.step(`collab · ${LABEL[kind]} · memory of ${cfg.collabMemoryDocs} open documents`);
      const before = await server.call<{ heapUsed: number; rss: number }>('memory');
      await editors.call('open', { url, dialect, docs: cfg.collabMemoryDocs, editors: 1, prefix: 'mem' }, 120_000);
      const after = await server.call<{ heapUsed: number; rss: number }>('memory');
      await editors.call('close');
      if (r.diverged! > 0) notes.push(`collab ${LABEL[kind]}: ${r.diverged} editors had not converged 20 s after the window`);
      out[kind] = {
        updatesPerSec: r.updatesPerSec!,
        p50: r.p50!,
        p99: r.p99!,
        diverged: r.diverged!,
        memoryPerDocKb: Math.round(((after.heapUsed - before.heapUsed) / cfg.collabMemoryDocs / 1024) * 10) / 10,
      };
    } catch (err) {
      notes.push(`collab ${LABEL[kind]}: failed: ${err instanceof Error ? err.message : String(err)}`);
      out[kind] = null;
      await editors.call('close').catch(() => undefined);
    } finally {
      await server.kill(cpuProfDir ? 5000 : 1500);
    }
  }
}

/**
 * The collab table, with ratios against Switchboard in the peers' persistence class (memory):
 * Hocuspocus without a persistence extension and the reference server keep documents in memory.
 */
export function renderCollab(results: Record<string, CollabResult | null>): string {
  const sb = results['switchboard-memory'] ?? results.switchboard;
  const rows = [
    ['collab (N docs × M editors)', 'updates/s', 'p50 ms', 'p99 ms', 'heap KB / open doc', 'SB (memory) updates/s ×', 'SB (memory) p99 ×'],
    ...COLLAB_SERVERS.map((k) => {
      const r = results[k];
      if (!r) return [LABEL[k], 'failed', '', '', '', '', ''];
      const ratio = (a: number | undefined, b: number): string => (a && b ? (a / b).toFixed(2) : '');
      return [
        LABEL[k],
        String(r.updatesPerSec),
        String(r.p50),
        String(r.p99),
        String(r.memoryPerDocKb),
        k.startsWith('switchboard') ? '' : ratio(sb?.updatesPerSec, r.updatesPerSec),
        k.startsWith('switchboard') ? '' : ratio(r.p99, sb?.p99 ?? 0),
      ];
    }),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')).join('\n');
}
