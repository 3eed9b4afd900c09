/**
 * The benchmark suite runs end to end on tiny sizes: every scenario, every server, the JSON,
 * the chart and the summary keys. No timing is asserted; `npm run bench` is where numbers live.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAllChildren } from '../bench/proc/child.js';
import { runBench } from '../bench/run.js';

const SUMMARY_KEYS = ['fanout_ratio_vs_socketio', 'p99_ratio_vs_socketio', 'idle_kb_per_conn', 'crossnode_ratio_vs_socketio'];
const SERVERS = ['switchboard', 'switchboard-memory', 'switchboard-sqlite', 'switchboard-redis', 'socketio', 'ws', 'ws-coalesce'];
const CONNECTION_SERVERS = ['switchboard', 'socketio', 'ws', 'ws-coalesce'];
const THROUGHPUT_KEYS = [
  'deliveriesPerSec',
  'p50Ms',
  'p99Ms',
  'maxMs',
  'serverCpuS',
  'subsCpuS',
  'pubCpuS',
  'nodeElu',
  'bytesPerMsg',
  'pacedBy',
];
/** Every target of the brief and of the issue "Performance as users run it" (the tiny run's window is 5). */
const TARGETS = [
  'fanout_4x_socketio',
  'p99_third_of_socketio',
  'fanout_0_9x_ws_coalesce',
  'idle_12kb_per_conn',
  'crossnode_4x_socketio',
  'fanout_sqlite_1x_ws_coalesce_if5',
  'fanout_sqlite_p99_1_1x_ws_coalesce_if5',
  'fanout_sqlite_0_9x_history_off_if5',
  'many_sqlite_1_1x_ws_coalesce',
  'crossnode_redis_1x_ws_coalesce',
  'crossnode_history_off_1x_ws_coalesce',
  'c18k_p99_1_2x_ws_coalesce',
  'c18k_12kb_per_conn',
];

describe('bench (smoke)', () => {
  const outDir = mkdtempSync(join(tmpdir(), 'switchboard-bench-'));
  afterAll(() => {
    killAllChildren();
    rmSync(outDir, { recursive: true, force: true });
  });

  it('runs every scenario on tiny sizes and writes the JSON, the chart and the summary', async () => {
    const out = await runBench({ mode: 'tiny', outDir, progress: false });

    for (const key of SUMMARY_KEYS) expect(out.summary).toHaveProperty(key);
    const json = JSON.parse(readFileSync(out.files.json, 'utf8'));
    for (const key of ['meta', 'fanout', 'many', 'idle', 'connect', 'cross', 'c18k', 'notes', 'summary']) expect(json).toHaveProperty(key);
    for (const key of SUMMARY_KEYS) expect(json.summary).toHaveProperty(key);

    const fanout = json.fanout[String(json.meta.config.fanoutInFlight[0])];
    for (const kind of SERVERS) {
      for (const key of THROUGHPUT_KEYS) expect(fanout[kind]).toHaveProperty(key);
      for (const key of THROUGHPUT_KEYS) expect(json.many[kind]).toHaveProperty(key);
    }
    for (const kind of CONNECTION_SERVERS) {
      expect(json.idle[kind]).toHaveProperty('kbPerConn');
      expect(json.connect[kind]).toHaveProperty('handshakesPerSec');
    }
    // Cross-node needs Redis: present as a figure or as null with a note, never missing.
    const cross = json.cross[String(json.meta.config.crossInFlight[0])];
    for (const kind of ['switchboard', 'switchboard-redis', 'socketio', 'ws-coalesce']) expect(cross).toHaveProperty(kind);
    // Beside it, in the same run: cross-node through a Redis Cluster (started by the bench) and serve --workers 1 vs 2.
    for (const key of THROUGHPUT_KEYS) expect(json.cluster[String(json.meta.config.crossInFlight[0])].switchboard).toHaveProperty(key);
    expect(Object.keys(json.workers)).toHaveLength(4);
    for (const result of Object.values(json.workers)) expect(result).toHaveProperty('deliveriesPerSec');
    expect(out.table).toContain('Redis Cluster (3 masters)');

    // The crowd scenario: every connection opened from several agents and source addresses, and counted.
    for (const kind of ['switchboard-sqlite', 'ws-coalesce']) {
      const c = json.c18k[kind];
      expect(c.connections).toBe(json.meta.config.c18kConns);
      expect(c.agents).toBe(json.meta.config.c18kAgents);
      expect(new Set(c.sourceAddresses).size).toBe(c.agents);
      expect(c.latencySamples).toBeGreaterThan(0);
      expect(c.kbPerConn).toEqual(expect.any(Number));
    }

    // Every target, with its figure and bound; measured ones say whether they are met.
    for (const id of TARGETS) {
      const t = json.summary.target_figures[id];
      expect(t, id).toMatchObject({ figure: expect.any(String), target: expect.stringMatching(/^(>=|<=) /) });
      expect(json.summary.targets[id]).toBe(t.met);
      if (t.value !== null) expect(typeof t.met).toBe('boolean');
    }
    expect(json.summary.target_figures.c18k_12kb_per_conn.value).toEqual(expect.any(Number));
    // Bytes per delivery per server: Switchboard's envelope against the reference's.
    expect(json.summary.bytes_per_delivery.switchboard).toBeGreaterThan(0);
    expect(json.summary.bytes_per_delivery['ws-coalesce']).toBeGreaterThan(0);

    // The PostgreSQL outbox, Switchboard alone: rows delivered end to end and the commit-to-deliver p99.
    expect(json.outbox.outbox).toMatchObject({ rowsPerSec: expect.any(Number), p99Ms: expect.any(Number) });
    expect(json.outbox.outbox.rows).toBeGreaterThan(0);

    // The proxy scenario: connect proxy against JWT, publish proxy against none.
    for (const key of ['connectsPerSecJwt', 'connectsPerSecProxy', 'p99MsPlain', 'p99MsProxy']) expect(json.proxy[key]).toBeGreaterThan(0);
    expect(readFileSync(out.files.svg, 'utf8')).toMatch(/^<svg[^>]*>[\s\S]*<\/svg>\s*$/);
    expect(out.table).toContain('deliveries/s');
    expect(out.table).toContain('paced by');
    expect(out.results.pace?.length).toBeGreaterThan(0);
  }, 300_000);

  it('splits a busy subscriber agent over two, and marks a figure still limited by the load generator', async () => {
    // A busy limit of 0 makes every window "busy": each is measured again on two agents and marked.
    const out = await runBench({
      mode: 'tiny',
      outDir,
      progress: false,
      scenarios: ['fanout'],
      servers: ['switchboard-sqlite', 'ws-coalesce'],
      config: { subsBusyLimit: 0, splitBelowMachineBusyPct: 101 },
    });
    const w = String(out.results.meta.config.fanoutInFlight[0]);
    for (const kind of ['switchboard-sqlite', 'ws-coalesce'] as const) {
      const t = out.results.fanout[w]![kind]!;
      expect(t.subsAgents).toBe(2);
      expect(t.beforeSplit).toBeDefined();
      // The split load is the same load: every subscriber connected and counted.
      expect(t.connections).toBe(out.results.meta.config.fanoutSubs);
      expect(t.deliveriesPerSec).toBeGreaterThan(0);
      expect(t.latencySamples).toBeGreaterThan(0);
      expect(t.loadgenLimited).toBe(true);
    }
    // The split agents speak the Switchboard dialect (protocol v2): a delivery costs about the reference's bytes.
    const [sb, ref] = [out.results.fanout[w]!['switchboard-sqlite']!, out.results.fanout[w]!['ws-coalesce']!];
    expect(sb.bytesPerMsg).toBeLessThanOrEqual(1.1 * ref.bytesPerMsg);
    expect(out.results.notes.some((n) => /split over 2 agents/.test(n))).toBe(true);
    expect(out.results.notes.some((n) => /LIMITED BY THE LOAD GENERATOR/.test(n))).toBe(true);
    expect(out.summary.target_figures[`fanout_sqlite_1x_ws_coalesce_if${w}`]!.loadgenLimited).toBe(true);
    expect(out.table).toMatch(/subscriber agents/);
  }, 120_000);
});
