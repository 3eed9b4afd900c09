import type { Identity } from '../auth/verifier.js';
import type { Limits } from '../config/options.js';
import { PROTOCOL_VERSION } from '../protocol/commands.js';

/** The result of a `connect` reply: who the client is, its heartbeat, and the limits it must keep. */
export function connectResult(client: string, identity: Identity, limits: Limits): Record<string, unknown> {
  const result: Record<string, unknown> = {
    client,
    user: identity.user,
    ping: Math.round(limits.pingIntervalMs / 1000),
    pong: Math.round(limits.pongTimeoutMs / 1000),
    version: PROTOCOL_VERSION,
    limits: {
      commandRate: limits.commandRate,
      maxMessageBytes: limits.maxMessageBytes,
      maxChannels: limits.maxChannelsPerConnection,
      historyMaxLimit: limits.historyMaxLimit,
      typingExpireMs: limits.typingExpireMs,
      publishBytesRate: limits.publishBytesRate,
      replyBytes: Math.floor(limits.maxQueueBytes / 4),
    },
  };
  if (identity.expires !== undefined) result.expires = identity.expires;
  return result;
}
