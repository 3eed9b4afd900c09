import type { ServerKind } from './servers/types.js';

export type Mode = 'full' | 'quick' | 'tiny';
export type ScenarioName =
  | 'fanout'
  | 'many'
  | 'idle'
  | 'connect'
  | 'cross'
  | 'c18k'
  | 'cluster'
  | 'workers'
  | 'outbox'
  | 'collab'
  | 'proxy'
  | 'codec'
  | 'game';

export const ALL_SCENARIOS: readonly ScenarioName[] = [
  'fanout',
  'many',
  'idle',
  'connect',
  'cross',
  'c18k',
  'cluster',
  'workers',
  'outbox',
  'collab',
  'proxy',
  'codec',
  'game',
];
/** Left out of a quick run unless --only names them: opening 18k connections twice takes about a minute on an idle machine. */
export const QUICK_SKIPS: readonly ScenarioName[] = ['c18k'];
export const ALL_SERVERS: readonly ServerKind[] = [
  'switchboard',
  'switchboard-memory',
  'switchboard-sqlite',
  'switchboard-redis',
  'socketio',
  'ws',
  'ws-coalesce',
];
/** The cross-node scenario has no plain-ws peer: the coalescing ws + ioredis one is the reference. */
export const CROSS_SERVERS: readonly ServerKind[] = ['switchboard', 'switchboard-redis', 'socketio', 'ws-coalesce'];
/** Idle memory and connect rate do not depend on where history is kept: the history-off server stands for Switchboard. */
export const CONNECTION_SERVERS: readonly ServerKind[] = ['switchboard', 'socketio', 'ws', 'ws-coalesce'];
/**
 * 18k connections: the coalescing ws reference and one Switchboard, the first of these chosen
 * with --servers (by default SQLite history, as `switchboard serve` runs).
 */
export const C18K_SWITCHBOARDS: readonly ServerKind[] = ['switchboard-sqlite', 'switchboard', 'switchboard-memory', 'switchboard-redis'];

/** Sizes and durations of one run. The sizes of full and quick are the issue's; only time differs. */
export interface BenchConfig {
  mode: Mode;
  /** Fan-out: subscribers of the one channel, and the publisher's in-flight windows. */
  fanoutSubs: number;
  fanoutInFlight: number[];
  /** Many channels: connections × channels each, out of `manyChannels`. */
  manyConns: number;
  manyChannels: number;
  manyPerConn: number;
  manyInFlight: number;
  /** Idle memory: subscribed idle connections. */
  idleConns: number;
  /** Connect rate: handshakes, and how many run at once. */
  connectConns: number;
  connectConcurrency: number;
  /** Cross-node: subscribers on node A and in-flight windows. */
  crossSubs: number;
  crossInFlight: number[];
  /** Publishing before a measurement window starts, then the window itself. */
  warmupMs: number;
  windowMs: number;
  /** One connection in this many samples latency. */
  sampleEvery: number;
  /** Handshakes in flight while opening subscriber connections. */
  openConcurrency: number;
  /** Collab: documents × editors each, each editor's updates not yet seen by the next editor, and documents opened for the memory figure. */
  collabDocs: number;
  collabEditors: number;
  collabInFlight: number;
  collabMemoryDocs: number;
  /**
   * Editors agents (processes): the documents are split between them, each document's editors
   * in one process (the closed loop acknowledges in-process), so one agent's event loop does not
   * set the pace of every server alike.
   */
  collabAgents: number;
  /**
   * Open loop: edits a second per editor (a fixed offered rate, well below every server's
   * saturation), for the latency of the servers themselves rather than of the closed loop's queue.
   */
  collabOpenHz: number;
  /**
   * A subscriber agent whose event loop is busier than this (0–1) in a window limits the figure:
   * the window is measured again with the subscribers split over two agents when the machine
   * was under `splitBelowMachineBusyPct` busy (a second agent has a core to run on); otherwise,
   * or if the split agents are still that busy, the figure is marked as limited by the load generator.
   */
  subsBusyLimit: number;
  splitBelowMachineBusyPct: number;
  /** 18k connections: subscribers of one channel, spread over `c18kAgents` agents (one 127.0.0.x source address each). */
  c18kConns: number;
  c18kAgents: number;
  /** One broadcast every `c18kIntervalMs`: `c18kWarmup` before the window, `c18kBroadcasts` in it. */
  c18kIntervalMs: number;
  c18kWarmup: number;
  c18kBroadcasts: number;
}

const FULL: BenchConfig = {
  mode: 'full',
  fanoutSubs: 1000,
  fanoutInFlight: [20, 100],
  manyConns: 2000,
  manyChannels: 500,
  manyPerConn: 5,
  manyInFlight: 100,
  idleConns: 10_000,
  connectConns: 5000,
  connectConcurrency: 50,
  crossSubs: 1000,
  crossInFlight: [20, 100],
  warmupMs: 2000,
  windowMs: 10_000,
  sampleEvery: 10,
  openConcurrency: 100,
  collabDocs: 50,
  collabEditors: 4,
  collabInFlight: 4,
  collabMemoryDocs: 1000,
  collabAgents: 2,
  collabOpenHz: 10,
  subsBusyLimit: 0.9,
  splitBelowMachineBusyPct: 90,
  c18kConns: 18_000,
  c18kAgents: 4,
  c18kIntervalMs: 1000,
  c18kWarmup: 2,
  c18kBroadcasts: 20,
};

const QUICK: BenchConfig = {
  ...FULL,
  mode: 'quick',
  connectConns: 1000,
  crossInFlight: [20],
  warmupMs: 500,
  windowMs: 2000,
  c18kWarmup: 1,
  c18kBroadcasts: 5,
};

const TINY: BenchConfig = {
  mode: 'tiny',
  fanoutSubs: 20,
  fanoutInFlight: [5],
  manyConns: 20,
  manyChannels: 10,
  manyPerConn: 2,
  manyInFlight: 5,
  idleConns: 30,
  connectConns: 20,
  connectConcurrency: 5,
  crossSubs: 10,
  crossInFlight: [5],
  warmupMs: 100,
  windowMs: 300,
  sampleEvery: 2,
  openConcurrency: 10,
  collabDocs: 3,
  collabEditors: 2,
  collabInFlight: 2,
  collabMemoryDocs: 20,
  collabAgents: 2,
  collabOpenHz: 10,
  subsBusyLimit: 0.9,
  splitBelowMachineBusyPct: 90,
  c18kConns: 60,
  c18kAgents: 2,
  c18kIntervalMs: 200,
  c18kWarmup: 1,
  c18kBroadcasts: 3,
};

export function configFor(mode: Mode, overrides: Partial<BenchConfig> = {}): BenchConfig {
  return { ...(mode === 'full' ? FULL : mode === 'quick' ? QUICK : TINY), ...overrides, mode };
}
