import type { Publication } from '../stream/types.js';
import type { ResolvedChannel } from '../channels/channels.js';
import type { Connection } from '../connection/connection.js';

/** One connection's subscription to one channel, with the position it has been sent up to. */
export class Subscription {
  /** Live publications that arrived while the subscribe reply was being prepared. */
  buffered: Array<{ pub: Publication; frame: Buffer; epoch: string }> | null = [];
  /** Offset of the last publication sent to the client (0 before any). */
  offset = 0;
  epoch = '';
  /** The stream top seen by the last position check while this subscription was behind it. */
  behindTop = 0;

  constructor(
    readonly connection: Connection,
    readonly channel: ResolvedChannel,
  ) {}

  get active(): boolean {
    return this.buffered === null;
  }
}
