import { readFileSync } from 'node:fs';
import type { HubOptionsInput } from './options.js';

/** Environment variables that override the configuration file. */
export const ENV = {
  port: 'SWITCHBOARD_PORT',
  dataDir: 'SWITCHBOARD_DATA_DIR',
  tokenSecret: 'SWITCHBOARD_TOKEN_SECRET',
  apiKey: 'SWITCHBOARD_API_KEY',
  redisUrl: 'SWITCHBOARD_REDIS_URL',
  postgresUrl: 'SWITCHBOARD_POSTGRES_URL',
  redisCluster: 'SWITCHBOARD_REDIS_CLUSTER',
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
  if (cluster) out.redisCluster = splitList(cluster);
  if (env[ENV.adminPassword]) out.adminPassword = env[ENV.adminPassword];
  return out;
}

/** `a:1, b:2` → `['a:1', 'b:2']` (for seed lists in a variable or a flag). */
export function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
