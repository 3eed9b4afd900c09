import { ALL_SERVERS } from '../config.js';
import type { BenchResults, PerServer } from '../results.js';
import { SERVER_LABEL } from '../scenarios/context.js';
import type { ServerKind } from '../servers/types.js';
import { fmtNum, fmtRate } from './format.js';
import { headlineWindow } from './pick.js';

interface Panel {
  title: string;
  values: PerServer<number>;
  format: (v: number) => string;
}

const COLORS: Record<ServerKind, string> = {
  switchboard: '#2563eb',
  'switchboard-memory': '#60a5fa',
  'switchboard-sqlite': '#1e3a8a',
  'switchboard-redis': '#7c3aed',
  socketio: '#f59e0b',
  ws: '#9ca3af',
  'ws-coalesce': '#10b981',
  'switchboard-game': '#2563eb',
  'socketio-game': '#f59e0b',
};

const PANEL_W = 470;
const BAR_H = 22;
const LABEL_W = 100;
const COLS = 2;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function values<T>(per: PerServer<T>, f: (t: T) => number | null): PerServer<number> {
  const out: PerServer<number> = {};
  for (const k of ALL_SERVERS) {
    const t = per[k];
    if (t !== undefined) out[k] = t === null ? null : f(t);
  }
  return out;
}

function panels(r: BenchResults): Panel[] {
  const out: Panel[] = [];
  for (const [w, per] of Object.entries(r.fanout)) {
    out.push({
      title: `Fan-out deliveries/s (${r.meta.config.fanoutSubs} subs, in-flight ${w})`,
      values: values(per, (t) => t.deliveriesPerSec),
      format: fmtRate,
    });
  }
  const hw = headlineWindow(r.fanout);
  if (hw !== undefined) {
    out.push({
      title: `Fan-out p99 latency, ms (in-flight ${hw}; lower is better)`,
      values: values(r.fanout[hw]!, (t) => t.p99Ms),
      format: (v) => fmtNum(v),
    });
  }
  if (Object.keys(r.many).length)
    out.push({ title: 'Many channels deliveries/s', values: values(r.many, (t) => t.deliveriesPerSec), format: fmtRate });
  if (Object.keys(r.idle).length)
    out.push({
      title: 'Idle memory, KB per subscribed connection (lower is better)',
      values: values(r.idle, (t) => t.kbPerConn),
      format: (v) => fmtNum(v),
    });
  if (Object.keys(r.connect).length)
    out.push({ title: 'Connect rate, handshakes/s (JWT verified)', values: values(r.connect, (t) => t.handshakesPerSec), format: fmtRate });
  for (const [w, per] of Object.entries(r.cross)) {
    out.push({
      title: `Cross-node via Redis deliveries/s (in-flight ${w})`,
      values: values(per, (t) => t.deliveriesPerSec),
      format: fmtRate,
    });
  }
  if (Object.keys(r.c18k).length) {
    const n = r.meta.config.c18kConns;
    out.push({
      title: `${n} connections, 1 broadcast/s: p99 ms (lower is better)`,
      values: values(r.c18k, (t) => t.p99Ms),
      format: (v) => fmtNum(v),
    });
    out.push({
      title: `${n} connections: server RSS KB per connection`,
      values: values(r.c18k, (t) => t.kbPerConn),
      format: (v) => fmtNum(v),
    });
  }
  return out;
}

function panelSvg(p: Panel, x: number, y: number): { svg: string; height: number } {
  const kinds = ALL_SERVERS.filter((k) => p.values[k] !== undefined);
  const max = Math.max(1e-9, ...kinds.map((k) => p.values[k] ?? 0));
  const barMax = PANEL_W - LABEL_W - 70;
  const parts = [`<text x="${x}" y="${y + 14}" class="t">${esc(p.title)}</text>`];
  kinds.forEach((k, i) => {
    const v = p.values[k];
    const by = y + 24 + i * (BAR_H + 4);
    const w = v == null ? 0 : Math.max(1, (v / max) * barMax);
    parts.push(`<text x="${x + LABEL_W - 6}" y="${by + 15}" class="l" text-anchor="end">${esc(SERVER_LABEL[k])}</text>`);
    parts.push(`<rect x="${x + LABEL_W}" y="${by}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${COLORS[k]}" rx="2"/>`);
    parts.push(`<text x="${x + LABEL_W + w + 5}" y="${by + 15}" class="v">${v == null ? 'n/a' : esc(p.format(v))}</text>`);
  });
  return { svg: parts.join('\n'), height: 30 + kinds.length * (BAR_H + 4) + 18 };
}

/** A hand-written SVG: one horizontal bar panel per figure, two panels a row. */
export function renderSvg(r: BenchResults): string {
  const ps = panels(r);
  const chunks: string[] = [];
  let y = 50;
  for (let i = 0; i < ps.length; i += COLS) {
    let rowH = 0;
    for (let c = 0; c < COLS && i + c < ps.length; c++) {
      const { svg, height } = panelSvg(ps[i + c]!, 20 + c * (PANEL_W + 20), y);
      chunks.push(svg);
      rowH = Math.max(rowH, height);
    }
    y += rowH;
  }
  const width = COLS * (PANEL_W + 20) + 20;
  const height = y + 10;
  const title = `Switchboard benchmark (${r.meta.mode}) — ${r.meta.date.slice(0, 10)}, Node ${r.meta.node}, ${r.meta.cpus} × ${r.meta.cpuModel}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif">`,
    '<style>.t{font-size:13px;font-weight:600;fill:#111}.l{font-size:12px;fill:#333}.v{font-size:12px;fill:#111}.h{font-size:15px;font-weight:700;fill:#111}</style>',
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="20" y="28" class="h">${esc(title)}</text>`,
    ...chunks,
    '</svg>',
    '',
  ].join('\n');
}
