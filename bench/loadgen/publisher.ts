import { BenchClient, type Target } from './client.js';
import { DIALECTS, type Dialect } from './dialects.js';
import { signHs256 } from './jwt.js';
import { countMarkers, makePayload, nowUs } from './payload.js';

export interface PublisherSpec {
  /** Where publishes go (node B in the cross-node scenario). */
  target: Target;
  /** Where the sentinel subscriber listens (node A in the cross-node scenario). */
  sentinel: Target;
  channels: string[];
  secret: string;
  timeoutMs: number;
}

export interface PublisherStats {
  sent: number;
  received: number;
  errors: number;
  stalls: number;
}

/** With nothing back for this long, the in-flight window is assumed lost and reopened. */
const STALL_MS = 1000;

/**
 * The publisher: keeps a fixed number of 130-byte messages in flight. A message stops being in
 * flight when the sentinel — one more subscriber of every channel, subscribed after all the
 * others — receives it, so the publisher runs exactly as fast as the server delivers and
 * latency stays bounded by the window instead of growing in buffers.
 */
export class Publisher {
  private pub: BenchClient | undefined;
  private sentinel: BenchClient | undefined;
  private dialect: Dialect | undefined;
  private channels: string[] = [];
  private seq = 0;
  private inFlight = 0;
  private window = 0;
  private running = false;
  private lastRx = 0;
  private watchdog: NodeJS.Timeout | undefined;
  private stats: PublisherStats = { sent: 0, received: 0, errors: 0, stalls: 0 };

  async open(spec: PublisherSpec): Promise<void> {
    this.dialect = DIALECTS[spec.target.dialect];
    this.channels = spec.channels;
    this.sentinel = new BenchClient(spec.sentinel, signHs256(spec.secret, 'sentinel'), spec.channels, this.onSentinel, () => {});
    await this.sentinel.open(spec.timeoutMs);
    const dialect = this.dialect;
    this.pub = new BenchClient(
      spec.target,
      signHs256(spec.secret, 'publisher'),
      [],
      (frame) => {
        this.stats.errors += dialect.countErrors(frame);
      },
      () => {},
    );
    await this.pub.open(spec.timeoutMs);
  }

  start(window: number): void {
    this.window = window;
    this.running = true;
    this.lastRx = Date.now();
    this.stats = { sent: 0, received: 0, errors: 0, stalls: 0 };
    this.watchdog = setInterval(() => {
      if (this.running && this.inFlight > 0 && Date.now() - this.lastRx > STALL_MS) {
        this.stats.stalls += 1;
        this.inFlight = 0;
        this.lastRx = Date.now();
        this.pump();
      }
    }, 250);
    this.pump();
  }

  /**
   * Paced instead of windowed: one publish every `intervalMs` on the first channel, whatever is
   * in flight (the 18k-connection broadcast); the sentinel only counts.
   */
  startPaced(intervalMs: number): void {
    this.window = 0;
    this.running = true;
    this.stats = { sent: 0, received: 0, errors: 0, stalls: 0 };
    const send = () => {
      const pub = this.pub;
      if (!this.running || !pub || !this.dialect) return;
      const seq = this.seq++;
      pub.ws.sendText(this.dialect.publishFrame(this.channels[0]!, makePayload(seq, nowUs()), seq));
      this.stats.sent += 1;
    };
    this.watchdog = setInterval(send, intervalMs);
    send();
  }

  currentStats(): PublisherStats {
    return { ...this.stats };
  }

  /** Stops sending, waits (bounded) for what is in flight, and returns the counts. */
  async stop(drainMs: number): Promise<PublisherStats> {
    this.running = false;
    const until = Date.now() + drainMs;
    while (this.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    clearInterval(this.watchdog);
    this.inFlight = 0;
    return { ...this.stats };
  }

  close(): void {
    this.running = false;
    clearInterval(this.watchdog);
    this.pub?.destroy();
    this.sentinel?.destroy();
  }

  private readonly onSentinel = (frame: Buffer): void => {
    const n = countMarkers(frame);
    if (n === 0) return;
    this.stats.received += n;
    this.inFlight = Math.max(0, this.inFlight - n);
    this.lastRx = Date.now();
    this.pump();
  };

  private pump(): void {
    const pub = this.pub;
    const dialect = this.dialect;
    if (!this.running || !pub || !dialect) return;
    const room = this.window - this.inFlight;
    if (room <= 0) return;
    pub.ws.cork();
    for (let i = 0; i < room; i++) {
      const seq = this.seq++;
      const channel = this.channels[seq % this.channels.length]!;
      pub.ws.sendText(dialect.publishFrame(channel, makePayload(seq, nowUs()), seq));
    }
    pub.ws.uncork();
    this.inFlight += room;
    this.stats.sent += room;
  }
}
