import { randomBytes } from 'node:crypto';

/**
 * Client ids, short because they travel in every publication's publisher info: a prefix of 48
 * random bits drawn once per process (8 base64url characters), then a counter in base 36. The
 * prefix has a fixed length, so ids of one process never collide; ids of two processes collide
 * only if their prefixes do (for 1,000 processes sharing one Redis, a chance of about 2·10⁻⁹).
 * Ids are not secrets (presence lists them), and nothing grants access by one.
 */
const PREFIX = randomBytes(6).toString('base64url');
let next = 0;

export function newClientId(): string {
  const id = PREFIX + next.toString(36);
  next += 1;
  return id;
}
