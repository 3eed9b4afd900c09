import { randomBytes } from 'node:crypto';

/** A new epoch: short, random, URL-safe. */
export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}
