import { readFileSync } from 'node:fs';
import type { HubOptionsInput } from './options.js';
import type { RedisClusterInput } from './redis-cluster-options.js';

/** Environment variables that override the configuration file. */
export const ENV = {
  port: 'SWITCHBOARD_PORT',
  dataDir: 'SWITCHBOARD_DATA_DIR',
  tokenSecret: 'SWITCHBOARD_TOKEN_SECRET',
  apiKey: 'SWITCHBOARD_API_KEY',
  redisUrl: 'SWITCHBOARD_REDIS_URL',
  postgresUrl: 'SWITCHBOARD_POSTGRES_URL',
  redisCluster: 'SWITCHBOARD_REDIS_CLUSTER',
  redisClusterUsername: 'SWITCHBOARD_REDIS_CLUSTER_USERNAME',
  redisClusterPassword: 'SWITCHBOARD_REDIS_CLUSTER_PASSWORD',
  redisClusterTls: 'SWITCHBOARD_REDIS_CLUSTER_TLS',
  redisClusterCa: 'SWITCHBOARD_REDIS_CLUSTER_CA',
  adminPassword: 'SWITCHBOARD_ADMIN_PASSWORD',
} as const;

export const DEFAULT_DATA_DIR = './.switchboard';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Reads a JSON configuration file (the options of docs/operations.md); validation comes later. */
export function readConfigFile(file: string): HubOptionsInput {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ConfigError(`config file ${file} must hold a JSON object`);
  return value as HubOptionsInput;
}

/** Applies the SWITCHBOARD_* environment variables over a configuration. */
export function applyEnv(config: HubOptionsInput, env: NodeJS.ProcessEnv = process.env): HubOptionsInput {
  const out: HubOptionsInput = { ...config };
  const port = env[ENV.port];
  if (port !== undefined && port !== '') {
    if (!/^\d{1,5}$/.test(port)) throw new ConfigError(`${ENV.port} must be a port number, got ${JSON.stringify(port)}`);
    out.port = Number(port);
  }
  if (env[ENV.dataDir]) out.dataDir = env[ENV.dataDir];
  if (env[ENV.tokenSecret]) out.auth = { ...out.auth, secret: env[ENV.tokenSecret] };
  if (env[ENV.apiKey]) out.apiKey = env[ENV.apiKey];
  if (env[ENV.redisUrl]) out.redisUrl = env[ENV.redisUrl];
  if (env[ENV.postgresUrl]) out.postgres = { ...out.postgres, url: env[ENV.postgresUrl] };
  const cluster = env[ENV.redisCluster];
  if (cluster) out.redisCluster = withCluster(out.redisCluster, { seeds: splitList(cluster) });
  const username = env[ENV.redisClusterUsername];
  if (username) out.redisCluster = withCluster(out.redisCluster, { username });
  const password = env[ENV.redisClusterPassword];
  if (password) out.redisCluster = withCluster(out.redisCluster, { password });
  const tls = env[ENV.redisClusterTls];
  if (tls !== undefined && tls !== '') {
    if (!/^(1|0|true|false)$/.test(tls)) throw new ConfigError(`${ENV.redisClusterTls} must be 1, 0, true or false, got ${JSON.stringify(tls)}`);
    out.redisCluster = withCluster(out.redisCluster, { tls: tls === '1' || tls === 'true' });
  }
  const ca = env[ENV.redisClusterCa];
  if (ca) out.redisCluster = withCluster(out.redisCluster, { tls: { caFile: ca } });
  if (env[ENV.adminPassword]) out.adminPassword = env[ENV.adminPassword];
  return out;
}

type ClusterPatch = { seeds?: string[]; username?: string; password?: string; tls?: boolean | { caFile: string } };

/**
 * The `redisCluster` option with some fields set by a variable or a flag. Seeds alone stay a
 * plain list; anything more makes the object form. A CA file turns TLS on and keeps the other TLS
 * settings; `tls: false` turns it off. Missing seeds are left for validation to name.
 */
export function withCluster(current: RedisClusterInput | null | undefined, patch: ClusterPatch): RedisClusterInput {
  const base = current === undefined || current === null ? {} : isSeedList(current) ? { seeds: current } : current;
  const { tls: tlsPatch, ...rest } = patch;
  const next: Record<string, unknown> = { ...base, ...rest };
  if (typeof tlsPatch === 'boolean') next.tls = tlsPatch;
  else if (tlsPatch) next.tls = { ...('tls' in base && typeof base.tls === 'object' ? base.tls : {}), ...tlsPatch };
  const keys = Object.keys(next);
  if (keys.length === 1 && isSeedList(next.seeds)) return next.seeds;
  return next as RedisClusterInput;
}

function isSeedList(v: unknown): v is readonly string[] {
  return Array.isArray(v);
}

/** `a:1, b:2` → `['a:1', 'b:2']` (for seed lists in a variable or a flag). */
export function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
