/** The server kinds the bench runs side by side. */
export type ServerKind = 'switchboard' | 'socketio' | 'ws' | 'ws-coalesce' | GameServerKind;
/** The servers of the codec and game scenarios (bench/game). */
export type GameServerKind = 'switchboard-game' | 'socketio-game';

export interface ServerOptions {
  /** HS256 secret every server verifies the connection JWT with (jose). */
  secret: string;
  /** Set in the cross-node scenario: the nodes meet through this Redis. */
  redisUrl?: string;
  /** Set in the Redis Cluster scenario (Switchboard only): seed nodes, host:port. */
  redisCluster?: string[];
  /** Key prefix / channel prefix in Redis, unique per run. */
  redisPrefix?: string;
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
