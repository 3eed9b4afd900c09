import type { ServerKind } from './servers/types.js';

export type Mode = 'full' | 'quick' | 'tiny';
export type ScenarioName = 'fanout' | 'many' | 'idle' | 'connect' | 'cross' | 'cluster' | 'workers' | 'outbox' | 'collab' | 'proxy' | 'codec' | 'game';

export const ALL_SCENARIOS: readonly ScenarioName[] = ['fanout', 'many', 'idle', 'connect', 'cross', 'cluster', 'workers', 'outbox', 'collab', 'proxy', 'codec', 'game'];
export const ALL_SERVERS: readonly ServerKind[] = ['switchboard', 'socketio', 'ws', 'ws-coalesce'];
/** The cross-node scenario has no plain-ws peer: the coalescing ws + ioredis one is the reference. */
export const CROSS_SERVERS: readonly ServerKind[] = ['switchboard', 'socketio', 'ws-coalesce'];

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
};

const QUICK: BenchConfig = {
  ...FULL,
  mode: 'quick',
  connectConns: 1000,
  crossInFlight: [20],
  warmupMs: 500,
  windowMs: 2000,
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
};

export function configFor(mode: Mode): BenchConfig {
  return mode === 'full' ? FULL : mode === 'quick' ? QUICK : TINY;
}
