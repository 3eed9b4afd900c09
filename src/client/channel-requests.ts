import type { HistoryOptions, HistoryResult, PresenceEntry, PresenceResult, ReadState } from './types.js';
import { badArgument } from './validation.js';

/** What the channel requests need: a command that may wait for the connection. */
export interface CallHost {
  call(method: string, params: unknown, timeoutMs?: number): Promise<unknown>;
}

/**
 * The `history` command (also `client.history`, `Subscription.history`, notifications paging).
 * One request, one reply, passed on as the server sent it. The reply may hold fewer
 * publications than `limit` asked, the server keeping each reply under a byte budget (also
 * without `since`: then it holds the oldest part of the latest `limit`), and `position` stays
 * the stream top. So a short reply does not mean there are no more: to read on, ask again with
 * `since` = the offset of the last publication received (same epoch), until that offset
 * reaches `position.offset`.
 */
export async function requestHistory<T>(host: CallHost, channel: string, options: HistoryOptions): Promise<HistoryResult<T>> {
  const params: Record<string, unknown> = { channel };
  if (options.limit !== undefined) params.limit = options.limit;
  if (options.since !== undefined) params.since = { offset: options.since.offset, epoch: options.since.epoch };
  const r = (await host.call('history', params)) as HistoryResult<T>;
  return { position: r.position, publications: Array.isArray(r.publications) ? r.publications : [] };
}

/** The `presence` command (also `client.presence`). */
export async function requestPresence(host: CallHost, channel: string): Promise<PresenceResult> {
  const r = (await host.call('presence', { channel })) as { clients?: Record<string, PresenceEntry>; users?: string[] };
  const clients = r?.clients ?? {};
  // Older servers sent only `clients`: derive the users from them.
  const users = Array.isArray(r?.users) ? r.users : [...new Set(Object.values(clients).map((c) => c.user))].sort();
  return { clients, users };
}

/** The `markRead` command (also `client.notifications.markRead`). */
export async function requestMarkRead(host: CallHost, channel: string, offset: number | undefined): Promise<ReadState> {
  if (offset !== undefined && (!Number.isSafeInteger(offset) || offset < 0)) {
    throw badArgument('markRead: offset must be a non-negative integer');
  }
  return readState(await host.call('markRead', offset === undefined ? { channel } : { channel, offset }));
}

/** The `readState` command. */
export async function requestReadState(host: CallHost, channel: string): Promise<ReadState> {
  return readState(await host.call('readState', { channel }));
}

function readState(result: unknown): ReadState {
  const r = (result ?? {}) as Partial<ReadState>;
  const lastRead = typeof r.lastRead === 'number' ? r.lastRead : 0;
  const top = typeof r.top === 'number' ? r.top : 0;
  return {
    lastRead,
    top,
    epoch: typeof r.epoch === 'string' ? r.epoch : '',
    unread: typeof r.unread === 'number' ? r.unread : top - lastRead,
  };
}
