import { createHmac } from 'node:crypto';

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

/**
 * Signs an HS256 JWT with node:crypto (no library, so the load generator spends microseconds,
 * not milliseconds, on 10k tokens). Every server verifies it with jose.
 */
export function signHs256(secret: string, user: string, ttlSeconds = 3600): string {
  const now = Math.floor(Date.now() / 1000);
  const payload = Buffer.from(JSON.stringify({ sub: user, iat: now, exp: now + ttlSeconds })).toString('base64url');
  const sig = createHmac('sha256', secret).update(`${HEADER}.${payload}`).digest('base64url');
  return `${HEADER}.${payload}.${sig}`;
}
