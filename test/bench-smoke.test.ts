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
const SERVERS = ['switchboard', 'socketio', 'ws', 'ws-coalesce'];
const THROUGHPUT_KEYS = ['deliveriesPerSec', 'p50Ms', 'p99Ms', 'maxMs', 'serverCpuS', 'subsCpuS', 'pubCpuS', 'nodeElu'];

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
    for (const key of ['meta', 'fanout', 'many', 'idle', 'connect', 'cross', 'notes', 'summary']) expect(json).toHaveProperty(key);
    for (const key of SUMMARY_KEYS) expect(json.summary).toHaveProperty(key);

    const fanout = json.fanout[String(json.meta.config.fanoutInFlight[0])];
    for (const kind of SERVERS) {
      for (const key of THROUGHPUT_KEYS) expect(fanout[kind]).toHaveProperty(key);
      for (const key of THROUGHPUT_KEYS) expect(json.many[kind]).toHaveProperty(key);
      expect(json.idle[kind]).toHaveProperty('kbPerConn');
      expect(json.connect[kind]).toHaveProperty('handshakesPerSec');
    }
    // Cross-node needs Redis: present as a figure or as null with a note, never missing.
    const cross = json.cross[String(json.meta.config.crossInFlight[0])];
    for (const kind of ['switchboard', 'socketio', 'ws-coalesce']) expect(cross).toHaveProperty(kind);
    // Beside it, in the same run: cross-node through a Redis Cluster (started by the bench) and serve --workers 1 vs 2.
    for (const key of THROUGHPUT_KEYS) expect(json.cluster[String(json.meta.config.crossInFlight[0])].switchboard).toHaveProperty(key);
    expect(Object.keys(json.workers)).toHaveLength(4);
    for (const result of Object.values(json.workers)) expect(result).toHaveProperty('deliveriesPerSec');
    expect(out.table).toContain('Redis Cluster (3 masters)');

    expect(readFileSync(out.files.svg, 'utf8')).toMatch(/^<svg[^>]*>[\s\S]*<\/svg>\s*$/);
    expect(out.table).toContain('deliveries/s');
  }, 180_000);
});
