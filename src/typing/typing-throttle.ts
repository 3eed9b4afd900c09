interface TypingState {
  /** When the last signal was forwarded. */
  sentAt: number;
  /** When the indicator clears unless refreshed. */
  expiresAt: number;
  client: string;
}

export interface TypingSignal {
  channel: string;
  user: string;
  client: string;
  typing: boolean;
}

/**
 * Decides which typing signals go out: per user and channel, at most one `typing: true` per
 * `throttleMs` (the rest only refresh the expiry), a `typing: false` when the user stops, and a
 * `typing: false` of its own when the indicator was not refreshed for `expireMs`.
 */
export class TypingThrottle {
  private readonly states = new Map<string, TypingState>();

  constructor(
    private readonly throttleMs: number,
    private readonly expireMs: number,
  ) {}

  /** The signal to forward for this input, or undefined to drop it. */
  signal(channel: string, user: string, client: string, typing: boolean, now: number): TypingSignal | undefined {
    const key = `${channel}\u0000${user}`;
    const state = this.states.get(key);
    if (!typing) {
      if (!state) return undefined;
      this.states.delete(key);
      return { channel, user, client, typing: false };
    }
    if (state && now - state.sentAt < this.throttleMs) {
      state.expiresAt = now + this.expireMs;
      return undefined;
    }
    this.states.set(key, { sentAt: now, expiresAt: now + this.expireMs, client });
    return { channel, user, client, typing: true };
  }

  /** Indicators that expired by `now`, each as a `typing: false` to forward. */
  expire(now: number): TypingSignal[] {
    const out: TypingSignal[] = [];
    for (const [key, state] of this.states) {
      if (state.expiresAt > now) continue;
      this.states.delete(key);
      const sep = key.indexOf('\u0000');
      out.push({ channel: key.slice(0, sep), user: key.slice(sep + 1), client: state.client, typing: false });
    }
    return out;
  }

  /** A user stopped being able to type in a channel (unsubscribed, disconnected). */
  forget(channel: string, user: string): TypingSignal | undefined {
    const key = `${channel}\u0000${user}`;
    const state = this.states.get(key);
    if (!state) return undefined;
    this.states.delete(key);
    return { channel, user, client: state.client, typing: false };
  }
}
