import type { CollabResult } from './collab/run.js';
import type { ProxyBenchResult } from './scenarios/proxy.js';
import type { CodecResult, GameResult } from './game/scenarios.js';
import type { BenchConfig } from './config.js';
import type { ServerKind } from './servers/types.js';
import type { OutboxResult } from './scenarios/outbox.js';

/** Deliveries and latency of one publish/subscribe measurement window. */
export interface ThroughputResult {
  deliveriesPerSec: number;
  /** Publish-to-deliver latency, ms (sampled connections); null when nothing was sampled. */
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  latencySamples: number;
  windowS: number;
  /** CPU seconds during the window: all server processes, each node, subscriber agent, publisher agent. */
  serverCpuS: number;
  nodeCpuS: number[];
  subsCpuS: number;
  pubCpuS: number;
  /** Event-loop utilization (0–1) of each server node and of the subscriber agent (the busiest, when split): ~1 is the bottleneck. */
  nodeElu: number[];
  subsElu: number;
  /** Subscriber agent processes that held the connections in this window. */
  subsAgents: number;
  /** Load-generator (subscriber agents') CPU per delivered message, ns: the client's read cost. */
  subsNsPerDelivery: number;
  /** Which side's event loop was over the busy limit: it set the pace ('neither': the in-flight window did). */
  pacedBy: PacedBy;
  /** The subscriber agents were over the busy limit: the figure is the load generator's, not the server's. */
  loadgenLimited: boolean;
  /** Set when the window was measured again with the subscribers split: the first measurement's figures. */
  beforeSplit?: { deliveriesPerSec: number; subsElu: number };
  /** All cores together: busy share and the share spent in softirq (loopback networking), percent. */
  machineBusyPct: number;
  machineSoftirqPct: number;
  /** CPU (percent of one core) used by processes outside the bench during the window: other load skews the figures. */
  foreignCpuPct: number;
  /** Messages per WebSocket frame the subscribers received: how much the server coalesced. */
  msgsPerFrame: number;
  /** Server CPU (all nodes, user + system, softirq not included) per delivered message, in ns: the cost, less sensitive to other load than the rate. */
  serverNsPerDelivery: number;
  /** Bytes on the wire per delivered message (WebSocket payload, with the "\n" separators): the envelope's cost. */
  bytesPerMsg: number;
  connections: number;
  /** Publishes sent, in-flight windows given up as lost, refused publishes, connections the server closed. */
  published: number;
  stalls: number;
  errors: number;
  closed: number;
}

/** One window against `switchboard serve --workers N` processes (measured from outside: no event-loop figures). */
export interface WorkersResult {
  workers: number;
  deliveriesPerSec: number;
  p50Ms: number | null;
  p99Ms: number | null;
  windowS: number;
  /** CPU seconds of every server process (primaries and workers) during the window. */
  serverCpuS: number;
  serverNsPerDelivery: number;
  machineBusyPct: number;
  connections: number;
  published: number;
  errors: number;
}

export type PacedBy = 'server' | 'load generator' | 'both' | 'neither';

/** 18k connections receiving one broadcast per interval (scenario c18k). */
export interface C18kResult {
  connections: number;
  /** Load-generator agents and source addresses the connections came from. */
  agents: number;
  sourceAddresses: string[];
  /** Seconds it took to open (connect, authenticate, subscribe) them all. */
  openS: number;
  broadcasts: number;
  /** Deliveries counted ÷ (broadcasts sent in the window × connections), percent. */
  deliveredPct: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  latencySamples: number;
  /** Server RSS after a full GC with every connection open and after the broadcasts, MB; and its growth per connection, KB. */
  rssMb: number;
  kbPerConn: number;
  /** Server CPU % (one core = 100) and event-loop busy share during the window. */
  serverCpuPct: number;
  nodeElu: number;
  /** The busiest subscriber agent's event-loop busy share over the window. */
  subsElu: number;
  /**
   * Event-loop busy milliseconds per broadcast: the server's, and the busiest agent's (reading
   * its share of the frames). Whichever is larger set the pace of a broadcast's deliveries.
   */
  serverBusyMsPerBroadcast: number;
  subsBusyMsPerBroadcast: number;
  pacedBy: PacedBy;
  bytesPerMsg: number;
  foreignCpuPct: number;
  closed: number;
}

export interface IdleResult {
  connections: number;
  failed: number;
  kbPerConn: number;
  rssDeltaMb: number;
  heapKbPerConn: number;
}

export interface ConnectResult {
  connections: number;
  failed: number;
  handshakesPerSec: number;
  elapsedMs: number;
  serverCpuS: number;
}

/** One figure per server kind; null when that run failed or is unavailable (see notes). */
export type PerServer<T> = Partial<Record<ServerKind, T | null>>;

export interface BenchResults {
  meta: {
    date: string;
    mode: BenchConfig['mode'];
    node: string;
    cpus: number;
    cpuModel: string;
    durationS: number;
    /** CPU (percent of one core) other processes used just before the run. */
    busyBeforePct?: number;
    config: BenchConfig;
  };
  /** Keyed by the in-flight window. */
  fanout: Record<string, PerServer<ThroughputResult>>;
  many: PerServer<ThroughputResult>;
  idle: PerServer<IdleResult>;
  connect: PerServer<ConnectResult>;
  /** Proxy hooks (bench/scenarios/proxy.ts): connect and publish proxies against JWT and plain publish. */
  proxy?: ProxyBenchResult;
  /** Keyed by the in-flight window. */
  cross: Record<string, PerServer<ThroughputResult>>;
  /** PostgreSQL outbox, Switchboard only (no peer has one): outbox vs commit + POST /api/publish. */
  outbox?: OutboxResult | null;
  /** Cross-node through a Redis Cluster of 3 masters (sharded pub/sub), keyed by the in-flight window. */
  cluster?: Record<string, PerServer<ThroughputResult>>;
  /** `serve --workers N` on this machine: fan-out and cross-node, keyed by a label such as "fanout, 2 workers". */
  workers?: Record<string, WorkersResult | null>;
  /** Collaborative documents, keyed by server (switchboard, hocuspocus, yws-ref); absent when not run. */
  collab?: Record<string, CollabResult | null>;
  /** JSON against MessagePack (bench/game); its figures are also in `notes`. */
  codec?: CodecResult[];
  /** The game room: Switchboard (latest-value, MessagePack) against Socket.IO (volatile, msgpack). */
  game?: GameResult[];
  c18k: PerServer<C18kResult>;
  notes: string[];
  /** Per Switchboard window: bytes and client CPU per delivery against ws+coalesce, and which side set the pace. */
  pace?: string[];
}
