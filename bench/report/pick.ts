import type { PerServer, ThroughputResult } from '../results.js';

export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return null;
  return Math.round((a / b) * 100) / 100;
}

/** The in-flight window the headline uses: 20 (the brief's reference runs), else the first. */
export function headlineWindow(byWindow: Record<string, unknown>): string | undefined {
  const keys = Object.keys(byWindow);
  return keys.includes('20') ? '20' : keys[0];
}

/** The headline window's figures. */
export function pick(byWindow: Record<string, PerServer<ThroughputResult>>): PerServer<ThroughputResult> {
  const w = headlineWindow(byWindow);
  return w === undefined ? {} : (byWindow[w] ?? {});
}
