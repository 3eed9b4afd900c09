import { BenchClient, type Target } from './client.js';
import { signHs256 } from './jwt.js';
import { LatencyReservoir, type LatencyExport, type LatencySummary } from './latency.js';
import { MARKER_BYTE, countMarkers, nowUs, readStamp } from './payload.js';

export interface OpenSpec {
  target: Target;
  count: number;
  /** Channel names; connection i subscribes to names[(i·perConn + k) mod names.length], k < perConn. */
  channels: string[];
  perConn: number;
  secret: string;
  /** Users are `${userPrefix}${i}`: one user per connection. */
  userPrefix: string;
  /** Every sampleEvery-th connection reads the send stamp of every message it gets. */
  sampleEvery: number;
  /** Handshakes in progress at once. */
  concurrency: number;
  timeoutMs: number;
  /** Source addresses to spread connections over (127.0.0.x), to widen the ephemeral port space. */
  localAddresses?: string[];
  /**
   * Index of this agent's first connection when one load is split over several agents: names,
   * channels and sampling follow the global index, so a split load is the same load.
   */
  offset?: number;
}

export interface OpenResult {
  opened: number;
  failed: number;
  firstError?: string;
  elapsedMs: number;
}

export interface PoolReport {
  deliveries: number;
  frames: number;
  /** Payload bytes of the frames that carried deliveries. */
  bytes: number;
  elapsedMs: number;
  closed: number;
  connections: number;
  latency: LatencySummary | null;
  /** With `report({ raw: true })`: the latency samples, to merge several agents' reports. */
  raw?: LatencyExport;
}

/** The subscriber side of the load: many connections that count and sample what arrives. */
export class SubscriberPool {
  private clients: BenchClient[] = [];
  private deliveries = 0;
  private frames = 0;
  private bytes = 0;
  private closed = 0;
  private startedAt = Date.now();
  private readonly latency = new LatencyReservoir();

  async open(spec: OpenSpec): Promise<OpenResult> {
    const started = Date.now();
    const deadline = started + spec.timeoutMs;
    const base = this.clients.length;
    let next = 0;
    let opened = 0;
    let failed = 0;
    let firstError: string | undefined;
    const offset = spec.offset ?? 0;
    const tokens: string[] = [];
    for (let i = 0; i < spec.count; i++) tokens.push(signHs256(spec.secret, `${spec.userPrefix}${offset + i}`));
    const worker = async () => {
      while (next < spec.count && Date.now() < deadline) {
        const j = next++;
        const i = offset + j;
        const channels: string[] = [];
        for (let k = 0; k < spec.perConn; k++) channels.push(spec.channels[(i * spec.perConn + k) % spec.channels.length]!);
        const client = new BenchClient(spec.target, tokens[j]!, channels, this.counter((base + i) % spec.sampleEvery === 0), () => {
          this.closed += 1;
        });
        const local = spec.localAddresses?.length ? spec.localAddresses[j % spec.localAddresses.length] : undefined;
        try {
          await client.open(Math.max(1, deadline - Date.now()), local);
          this.clients.push(client);
          opened += 1;
        } catch (err) {
          failed += 1;
          firstError ??= err instanceof Error ? err.message : String(err);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(spec.concurrency, spec.count)) }, worker));
    failed += spec.count - opened - failed; // not attempted before the deadline
    return { opened, failed, elapsedMs: Date.now() - started, ...(firstError ? { firstError } : {}) };
  }

  /** The hot path: count payloads by their marker byte; sampled connections also read stamps. */
  private counter(sampled: boolean): (frame: Buffer) => void {
    if (!sampled) {
      return (frame) => {
        const n = countMarkers(frame);
        if (n > 0) {
          this.deliveries += n;
          this.frames += 1;
          this.bytes += frame.length;
        }
      };
    }
    return (frame) => {
      let p = frame.indexOf(MARKER_BYTE);
      if (p === -1) return;
      const now = nowUs();
      let n = 0;
      while (p !== -1) {
        n += 1;
        this.latency.add(now - readStamp(frame, p));
        p = frame.indexOf(MARKER_BYTE, p + 2);
      }
      this.deliveries += n;
      this.frames += 1;
      this.bytes += frame.length;
    };
  }

  /** Deliveries counted since the last reset (cheap: no latency summary). */
  get delivered(): number {
    return this.deliveries;
  }

  reset(): void {
    this.deliveries = 0;
    this.frames = 0;
    this.bytes = 0;
    this.closed = 0;
    this.latency.reset();
    this.startedAt = Date.now();
  }

  report(opts: { raw?: boolean } = {}): PoolReport {
    return {
      ...(opts.raw ? { raw: this.latency.export() } : {}),
      deliveries: this.deliveries,
      frames: this.frames,
      bytes: this.bytes,
      elapsedMs: Date.now() - this.startedAt,
      closed: this.closed,
      connections: this.clients.length,
      latency: this.latency.summary(),
    };
  }

  /** Drops every connection, then waits a moment for the sockets to go. */
  async closeAll(): Promise<void> {
    for (const c of this.clients) c.destroy();
    this.clients = [];
    await new Promise((r) => setTimeout(r, 50));
  }
}
