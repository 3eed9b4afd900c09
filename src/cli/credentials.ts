import { ENV, DEFAULT_DATA_DIR } from '../config/load.js';
import { readSecrets, secretsFile } from './secrets.js';

/** The data directory the CLI works with: SWITCHBOARD_DATA_DIR, or ./.switchboard. */
export function dataDirFromEnv(): string {
  return process.env[ENV.dataDir] || DEFAULT_DATA_DIR;
}

/** The token secret: SWITCHBOARD_TOKEN_SECRET, else the one `serve` generated in the data directory. */
export function tokenSecret(): string {
  const fromEnv = process.env[ENV.tokenSecret];
  if (fromEnv) return fromEnv;
  const secrets = readSecrets(dataDirFromEnv());
  if (secrets) return secrets.tokenSecret;
  throw new Error(`no token secret: set ${ENV.tokenSecret}, or run \`switchboard serve\` once to create ${secretsFile(dataDirFromEnv())}`);
}

/** The API key: SWITCHBOARD_API_KEY, else the one `serve` generated in the data directory. */
export function apiKey(): string {
  const fromEnv = process.env[ENV.apiKey];
  if (fromEnv) return fromEnv;
  const secrets = readSecrets(dataDirFromEnv());
  if (secrets) return secrets.apiKey;
  throw new Error(`no API key: set ${ENV.apiKey}, or run \`switchboard serve\` once to create ${secretsFile(dataDirFromEnv())}`);
}
