// Checks of what the SDK's callers pass in: BAD_ARGUMENT when wrong.
import { utf8Length } from './codec.js';
import { ClientErrorCode } from './constants.js';
import { ClientError } from './errors.js';

export function badArgument(message: string): ClientError {
  return new ClientError(ClientErrorCode.BAD_ARGUMENT, message);
}

export function checkChannel(channel: unknown): asserts channel is string {
  if (typeof channel !== 'string' || channel.length === 0 || utf8Length(channel) > 255) {
    throw badArgument('channel: expected a string of 1 to 255 bytes');
  }
}
