/** The servers of the codec and game scenarios (bench/game). */
export type GameServerKind = 'switchboard-game' | 'socketio-game';
/**
 * The server kinds the bench runs side by side. `switchboard` runs with history off (the
 * baseline the history-on variants are compared with); `switchboard-memory`, `-sqlite` (the
 * `switchboard serve` default) and `-redis` keep the default history (100 per channel) in
 * memory, in SQLite under a temporary dataDir, and in Redis.
 */
export type ServerKind =
  'switchboard' | 'switchboard-memory' | 'switchboard-sqlite' | 'switchboard-redis' | 'socketio' | 'ws' | 'ws-coalesce' | GameServerKind;

export interface ServerOptions {
  /** HS256 secret every server verifies the connection JWT with (jose). */
  secret: string;
  /** Set in the cross-node scenario (and for switchboard-redis): the nodes meet through this Redis. */
  redisUrl?: string;
  /** Set in the Redis Cluster scenario (Switchboard only): seed nodes, host:port. */
  redisCluster?: string[];
  /** Key prefix / channel prefix in Redis, unique per run. */
  redisPrefix?: string;
  /** switchboard-sqlite: the (temporary) directory of its SQLite file. */
  dataDir?: string;
}

export interface RunningServer {
  port: number;
}

export interface ServerStats {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}
