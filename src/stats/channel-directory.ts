/**
 * Which channels have subscribers, and how many, across every node. A single node answers
 * from its own index; nodes joined by Redis each publish a snapshot of theirs periodically.
 */
export interface ChannelDirectory {
  /** Channel → subscribers, summed over every live node. */
  channels(): Promise<Map<string, number>>;
  /** How many nodes contributed to `channels()`. */
  nodes(): Promise<number>;
  close(): Promise<void>;
}

/** The directory of a hub that is the only node. */
export class LocalChannelDirectory implements ChannelDirectory {
  constructor(private readonly local: () => Map<string, number>) {}

  async channels(): Promise<Map<string, number>> {
    return this.local();
  }

  async nodes(): Promise<number> {
    return 1;
  }

  async close(): Promise<void> {
    // Nothing held.
  }
}
