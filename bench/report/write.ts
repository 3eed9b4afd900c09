import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchResults } from '../results.js';
import { renderSvg } from './svg.js';
import type { Summary } from './summary.js';

export interface WrittenFiles {
  json: string;
  svg: string;
}

/**
 * Writes `bench-<mode>.json` (results, summary; gitignored) and `bench-<mode>.svg` (the chart;
 * the quick one may be committed) into `dir`.
 */
export function writeResults(dir: string, r: BenchResults, summary: Summary): WrittenFiles {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, `bench-${r.meta.mode}.json`);
  const svg = join(dir, `bench-${r.meta.mode}.svg`);
  writeFileSync(json, `${JSON.stringify({ ...r, summary }, null, 2)}\n`);
  writeFileSync(svg, renderSvg(r));
  return { json, svg };
}
