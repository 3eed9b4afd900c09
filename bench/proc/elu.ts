import type { EventLoopUtilization } from 'node:perf_hooks';
import type { Child } from './child.js';

/** A child's cumulative event-loop utilization (its `elu` command). */
export function readElu(child: Child): Promise<EventLoopUtilization> {
  return child.call<EventLoopUtilization>('elu');
}

/**
 * The share of a window a child's event loop was busy (0–1): near 1 means that process was
 * the bottleneck, whatever its CPU seconds say (kernel network time is partly accounted as
 * softirq, outside any process).
 */
export function eluBetween(a: EventLoopUtilization, b: EventLoopUtilization): number {
  const active = b.active - a.active;
  const total = active + (b.idle - a.idle);
  return total > 0 ? active / total : Number.NaN;
}
