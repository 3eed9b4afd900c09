import type { Broker } from '../broker/broker.js';
import type { StreamPosition } from '../stream/types.js';
import type { ResolvedChannel } from '../channels/channels.js';
import { HubError } from '../protocol/errors.js';
import type { Store } from '../store/store.js';

export interface ReadState {
  /** Last offset the user has read, in the current epoch (0: nothing). */
  lastRead: number;
  /** The channel's latest offset. */
  top: number;
  epoch: string;
  /** top − lastRead. */
  unread: number;
}

/**
 * Read positions per user and channel, on top of the Store and the channel's stream: marking
 * read (never backwards), unread counts, and who has read up to where.
 */
export class ReadReceipts {
  constructor(
    private readonly broker: Broker,
    private readonly store: Store,
  ) {}

  /**
   * Marks `offset` (clamped to the channel top) as read; `offset` omitted marks everything.
   * `moved` says whether the user's position went forward.
   */
  async markRead(user: string, ch: ResolvedChannel, offset: number | undefined): Promise<ReadState & { moved: boolean }> {
    const [top, before] = await Promise.all([this.top(ch), this.store.lastRead(user, ch.name)]);
    const wanted = offset === undefined ? top.offset : Math.min(Math.max(0, offset), top.offset);
    const stored = await this.store.markRead(user, ch.name, { offset: wanted, epoch: top.epoch });
    const lastRead = stored.epoch === top.epoch ? stored.offset : 0;
    const previous = before && before.epoch === top.epoch ? before.offset : 0;
    return { ...state(lastRead, top), moved: lastRead > previous };
  }

  async readState(user: string, ch: ResolvedChannel): Promise<ReadState> {
    const [top, last] = await Promise.all([this.top(ch), this.store.lastRead(user, ch.name)]);
    return state(last && last.epoch === top.epoch ? last.offset : 0, top);
  }

  /** Who has read the channel up to which offset, in its current epoch. */
  async readers(ch: ResolvedChannel): Promise<Record<string, number>> {
    const [top, all] = await Promise.all([this.top(ch), this.store.readers(ch.name)]);
    const out: Record<string, number> = {};
    for (const [user, pos] of Object.entries(all)) if (pos.epoch === top.epoch) out[user] = pos.offset;
    return out;
  }

  private async top(ch: ResolvedChannel): Promise<StreamPosition> {
    if (ch.history.size === 0) throw new HubError(108, 'read positions need history in this namespace');
    return (await this.broker.history(ch.name, { limit: 0 }, ch.history)).position;
  }
}

function state(lastRead: number, top: StreamPosition): ReadState {
  const read = Math.min(lastRead, top.offset);
  return { lastRead: read, top: top.offset, epoch: top.epoch, unread: top.offset - read };
}
