import type { EventLoopUtilization } from 'node:perf_hooks';
import { mergeLatency, type LatencyExport } from '../loadgen/latency.js';
import type { OpenResult, OpenSpec, PoolReport } from '../loadgen/subscribers.js';
import { Child } from '../proc/child.js';
import { readElu } from '../proc/elu.js';

export interface FleetOpen {
  /** Agents to spread the connections over (spawned on first use; the first always exists). */
  agents?: number;
  /** Source addresses of agent i's connections; default: the system's (127.0.0.1). */
  localAddresses?: (agent: number) => string[];
}

/**
 * The subscriber side of the load generator: one agent process by default, more when a load
 * is split (a busy agent) or too large for one process's open-files limit (18k connections).
 * A load of `count` connections is cut into consecutive slices, one per agent, which open
 * the same connections one agent would have (same users, channels and sampled connections).
 * Reports of several agents are merged: counts add up, latency percentiles come from all the
 * agents' samples together.
 */
export class SubscriberFleet {
  private readonly all: Child[] = [];
  /** How many agents hold the current load's connections. */
  private inUse = 1;

  constructor() {
    this.all.push(Child.spawn('loadgen-subscribers', 'loadgen/agent.ts'));
  }

  /** The agents holding connections now (at least the first). */
  get active(): Child[] {
    return this.all.slice(0, this.inUse);
  }

  /** Every agent process started so far. */
  get children(): Child[] {
    return [...this.all];
  }

  private ensure(n: number): void {
    while (this.all.length < n) this.all.push(Child.spawn(`loadgen-subscribers#${this.all.length}`, 'loadgen/agent.ts'));
  }

  /** Opens `spec.count` connections split over `opts.agents` agents; counts failures, never throws for them. */
  async open(spec: OpenSpec, opts: FleetOpen = {}, rpcTimeoutMs = spec.timeoutMs + 10_000): Promise<OpenResult> {
    const n = Math.max(1, Math.min(opts.agents ?? 1, spec.count || 1));
    this.ensure(n);
    this.inUse = Math.max(this.inUse, n);
    const base = Math.floor(spec.count / n);
    const slices = Array.from({ length: n }, (_, i) => base + (i < spec.count % n ? 1 : 0));
    let offset = spec.offset ?? 0;
    const results = await Promise.all(
      slices.map((count, i) => {
        const part: OpenSpec = { ...spec, count, offset, ...(opts.localAddresses ? { localAddresses: opts.localAddresses(i) } : {}) };
        offset += count;
        return this.all[i]!.call<OpenResult>('open', part, rpcTimeoutMs);
      }),
    );
    const firstError = results.find((r) => r.firstError)?.firstError;
    return {
      opened: results.reduce((a, r) => a + r.opened, 0),
      failed: results.reduce((a, r) => a + r.failed, 0),
      elapsedMs: Math.max(...results.map((r) => r.elapsedMs)),
      ...(firstError ? { firstError } : {}),
    };
  }

  async reset(): Promise<void> {
    await Promise.all(this.active.map((c) => c.call('reset')));
  }

  /** All active agents' counts together; latency merged from every agent's samples. */
  async report(): Promise<PoolReport> {
    const agents = this.active;
    if (agents.length === 1) return agents[0]!.call<PoolReport>('report');
    const parts = await Promise.all(agents.map((c) => c.call<PoolReport>('report', { raw: true })));
    const sum = (f: (r: PoolReport) => number) => parts.reduce((a, r) => a + f(r), 0);
    return {
      deliveries: sum((r) => r.deliveries),
      frames: sum((r) => r.frames),
      bytes: sum((r) => r.bytes),
      closed: sum((r) => r.closed),
      connections: sum((r) => r.connections),
      elapsedMs: Math.max(...parts.map((r) => r.elapsedMs)),
      latency: mergeLatency(parts.map((r) => r.raw).filter((r): r is LatencyExport => r !== undefined)),
    };
  }

  /** Deliveries the active agents counted since the last reset. */
  async delivered(): Promise<number> {
    const counts = await Promise.all(this.active.map((c) => c.call<number>('delivered')));
    return counts.reduce((a, b) => a + b, 0);
  }

  /** CPU seconds of the active agents together. */
  cpuSeconds(): number {
    return this.active.reduce((a, c) => a + c.cpuSeconds(), 0);
  }

  elus(): Promise<EventLoopUtilization[]> {
    return Promise.all(this.active.map((c) => readElu(c)));
  }

  /** Drops every connection of every agent; the next load starts on one agent again. */
  async closeAll(): Promise<void> {
    await Promise.all(this.all.map((c) => c.call('closeAll', undefined, 60_000)));
    this.inUse = 1;
  }

  async kill(): Promise<void> {
    await Promise.allSettled(this.all.map((c) => c.kill()));
  }
}
