import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Generated once per data directory when none are configured, so a local setup just works. */
export interface Secrets {
  tokenSecret: string;
  apiKey: string;
}

export function secretsFile(dataDir: string): string {
  return join(dataDir, 'secrets.json');
}

export function readSecrets(dataDir: string): Secrets | undefined {
  const file = secretsFile(dataDir);
  if (!existsSync(file)) return undefined;
  const value = JSON.parse(readFileSync(file, 'utf8')) as Partial<Secrets>;
  if (typeof value.tokenSecret !== 'string' || typeof value.apiKey !== 'string')
    throw new Error(`${file}: tokenSecret and apiKey expected`);
  return { tokenSecret: value.tokenSecret, apiKey: value.apiKey };
}

/** The data directory's secrets, created (readable by the owner only) if missing. */
export function ensureSecrets(dataDir: string): { secrets: Secrets; created: boolean } {
  const existing = readSecrets(dataDir);
  if (existing) return { secrets: existing, created: false };
  mkdirSync(dataDir, { recursive: true });
  const secrets: Secrets = { tokenSecret: randomBytes(32).toString('base64url'), apiKey: randomBytes(24).toString('base64url') };
  const file = secretsFile(dataDir);
  writeFileSync(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return { secrets, created: true };
}
