import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer } from './support/harness.js';

/**
 * deploy/grafana-dashboard.json queries only metrics a hub really exports at /metrics, with labels
 * those metrics really carry (besides `job` and `instance`, which Prometheus adds when scraping).
 */
const dashboard = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'deploy', 'grafana-dashboard.json'), 'utf8')) as {
  panels: Array<{ title: string; fieldConfig: { defaults: { unit?: string } }; targets: Array<{ expr: string }> }>;
  templating: { list: Array<{ query: unknown }> };
};
const SCRAPE_LABELS = new Set(['job', 'instance', 'le']);

afterAll(closeAllServers);

/** Metric name → label names seen, from a live hub's exposition (every sample name a TYPE line implies). */
async function exported(): Promise<Map<string, Set<string>>> {
  const server = await createTestServer();
  const a = await server.client({ user: 'a' });
  await a.subscribe('chat:g');
  await a.publish('chat:g', 1);
  await a.errorCode('nope', {});
  const b = await server.client({ user: 'b' });
  await b.close();
  const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
  const names = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line);
    if (type) {
      const [, name, kind] = type as unknown as [string, string, string];
      const suffixes = kind === 'histogram' ? ['_bucket', '_sum', '_count'] : kind === 'summary' ? ['', '_sum', '_count'] : [''];
      for (const s of suffixes) names.set(name + s, names.get(name + s) ?? new Set());
      continue;
    }
    const sample = /^([a-zA-Z_:][\w:]*)\{([^}]*)\}/.exec(line);
    if (sample) for (const m of sample[2]!.matchAll(/(\w+)="/g)) names.get(sample[1]!)?.add(m[1]!);
  }
  return names;
}

describe('Grafana dashboard', () => {
  it('every query uses real metric names and labels', async () => {
    const names = await exported();
    const queries = [
      ...dashboard.panels.flatMap((p) => p.targets.map((t) => [p.title, t.expr] as const)),
      ...dashboard.templating.list.filter((v) => typeof v.query === 'string' && v.query.includes('switchboard_')).map((v) => ['templating', v.query as string] as const),
    ];
    expect(queries.length).toBeGreaterThanOrEqual(15);
    const used = new Set<string>();
    for (const [title, expr] of queries) {
      const metrics = [...expr.matchAll(/\bswitchboard_\w+/g)].map((m) => m[0]);
      expect(metrics.length, title).toBeGreaterThan(0);
      for (const metric of metrics) {
        expect(names.has(metric), `${title}: ${metric} is not exported`).toBe(true);
        used.add(metric);
      }
      const labels = new Set([...metrics.flatMap((m) => [...names.get(m)!])]);
      // Selector keys and grouping labels.
      const keys = [...expr.matchAll(/[{,]\s*(\w+)\s*=~?/g), ...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((k) => k.trim()));
      for (const key of keys) if (!SCRAPE_LABELS.has(key)) expect(labels.has(key), `${title}: no label ${key} on ${metrics.join(', ')}`).toBe(true);
    }
    // The hub's own counters are all on it.
    for (const m of ['switchboard_connections', 'switchboard_publications_total', 'switchboard_deliveries_total', 'switchboard_disconnects_total', 'switchboard_command_errors_total'])
      expect(used.has(m), m).toBe(true);
    for (const p of dashboard.panels) expect(p.fieldConfig.defaults.unit, p.title).toBeTruthy();
  });
});
