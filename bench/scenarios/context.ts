import type { BenchConfig } from '../config.js';
import type { Child } from '../proc/child.js';
import type { Progress } from '../report/progress.js';
import type { ServerKind } from '../servers/types.js';
import type { SubscriberFleet } from './fleet.js';

/** What every scenario gets: the configuration, the load-generator agents, and a notebook. */
export interface RunContext {
  cfg: BenchConfig;
  servers: readonly ServerKind[];
  secret: string;
  /** Unique per run: Redis prefixes never collide with another run's. */
  runId: string;
  /** null when Redis is not reachable. */
  redisUrl: string | null;
  subs: SubscriberFleet;
  pub: Child;
  progress: Progress;
  notes: string[];
  /** When set, server processes write V8 CPU profiles here. */
  cpuProfDir?: string;
}

export const SERVER_LABEL: Record<ServerKind, string> = {
  switchboard: 'Switchboard',
  'switchboard-memory': 'SB+memory',
  'switchboard-sqlite': 'SB+SQLite',
  'switchboard-redis': 'SB+Redis',
  socketio: 'Socket.IO',
  ws: 'ws',
  'ws-coalesce': 'ws+coalesce',
  'switchboard-game': 'Switchboard (latest-value, MessagePack)',
  'socketio-game': 'Socket.IO (volatile, msgpack parser)',
};

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 300);
}
