import { createHash, randomBytes } from 'node:crypto';

const EPOCH_BYTES = 6;
/** Random bytes drawn 256 epochs at a time: one call to the CSPRNG per 256 publishes that may create a stream. */
const POOL_EPOCHS = 256;
let pool = Buffer.alloc(0);
let poolAt = 0;

/** A new epoch for a stream being created: short, random, URL-safe. */
export function newEpoch(): string {
  if (poolAt + EPOCH_BYTES > pool.length) {
    pool = randomBytes(EPOCH_BYTES * POOL_EPOCHS);
    poolAt = 0;
  }
  const epoch = pool.toString('base64url', poolAt, poolAt + EPOCH_BYTES);
  poolAt += EPOCH_BYTES;
  return epoch;
}

/** Width of the time part (seconds, base 36) of a provisional epoch. */
const TIME_CHARS = 7;
const TIME_PART = /^[0-9a-z]{7}$/;

/**
 * The provisional epoch a client is given for a channel that has no stream yet (nothing is
 * stored for it): when it was given (seconds, 7 base-36 digits) and a digest binding it to the
 * channel. Nothing is stored; any node can check it with `provisionalEpochTime`.
 */
export function provisionalEpoch(channel: string, now: number): string {
  const time = Math.floor(now / 1000)
    .toString(36)
    .padStart(TIME_CHARS, '0');
  return time + digest(channel, time);
}

/** When a provisional epoch of `channel` was given (ms), or undefined for any other epoch. */
export function provisionalEpochTime(channel: string, epoch: string): number | undefined {
  const time = epoch.slice(0, TIME_CHARS);
  if (epoch.length !== TIME_CHARS + 8 || !TIME_PART.test(time) || epoch.slice(TIME_CHARS) !== digest(channel, time)) return undefined;
  return parseInt(time, 36) * 1000;
}

function digest(channel: string, time: string): string {
  return createHash('sha256').update(`${channel}\n${time}`).digest('base64url').slice(0, 8);
}
