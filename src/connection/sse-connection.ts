import type { Node } from '../hub/node.js';
import type { OpenedResult, PushKind, SubscribeAnswer } from '../hub/session.js';
import type { Subscription } from '../hub/subscription.js';
import { CloseCode, type CloseCodeValue } from '../protocol/close-codes.js';
import { encodeEventId } from '../protocol/sse-event-id.js';
import type { Publication, StreamPosition } from '../stream/types.js';
import { Connection, latestKey, type HandshakeInfo } from './connection.js';
import type { FlushScheduler } from './outbound-queue.js';
import type { Transport } from './transport.js';

const KEEP_ALIVE = Buffer.from(': keep-alive\n\n');

function sseEvent(event: string, data: string, id: string | null): Buffer {
  return Buffer.from(`${id !== null ? `id: ${id}\n` : ''}event: ${event}\ndata: ${data}\n\n`);
}

/**
 * A server-to-client session over Server-Sent Events: no commands, a fixed list of channels,
 * and every event id holding the positions of all of them (see protocol/sse-event-id.ts).
 */
export class SseConnection extends Connection {
  /**
   * Channels in the order of the request URL, then the server-side ones (in the order the
   * connect proxy or the JWT named them); event ids list positions in this order.
   */
  private readonly order: string[];
  /** Positions of channels not subscribed yet: where the client said it stands (Last-Event-ID). */
  private readonly known = new Map<string, StreamPosition>();

  constructor(node: Node, transport: Transport, handshake: HandshakeInfo, scheduler: FlushScheduler, channels: string[]) {
    super(node, transport, handshake, scheduler);
    this.order = [...channels];
  }

  /** The channels of the stream, in event-id order. */
  get channels(): readonly string[] {
    return this.order;
  }

  /** Adds the server-side channels the URL did not name, after the URL's (their event-id order). */
  addServerSide(channels: readonly string[]): void {
    for (const name of channels) if (!this.order.includes(name)) this.order.push(name);
  }

  /** Records where the client stands in a channel before it is subscribed. */
  setPosition(channel: string, position: StreamPosition): void {
    this.known.set(channel, position);
  }

  /** The event id: every channel's position, `at` overriding one channel's (a recovered event). */
  eventId(at?: { channel: string; offset: number; epoch: string }): string {
    const subs = this.node.registry.of(this);
    return encodeEventId(
      this.order.map((name) => {
        if (at?.channel === name) return { offset: at.offset, epoch: at.epoch };
        const sub = subs.get(name);
        return sub ? { offset: sub.offset, epoch: sub.epoch } : (this.known.get(name) ?? { offset: 0, epoch: '' });
      }),
    );
  }

  /** Sends one SSE event; `data` must be single-line JSON. */
  sendEvent(event: string, data: string, id: string | null = this.eventId()): void {
    this.enqueue(sseEvent(event, data, id));
  }

  /** How a subscribe is answered on SSE: recovery-failed when it applies, then recovered events. */
  sseAnswer(): SubscribeAnswer {
    const recovered = (sub: Subscription, pubs: readonly Publication[]): void => {
      const channel = sub.channel.name;
      for (const pub of pubs) this.sendEvent(channel, pub.data, this.eventId({ channel, offset: pub.offset, epoch: sub.epoch }));
    };
    return {
      opened: (sub: Subscription, result: OpenedResult, pubs: readonly Publication[]) => {
        this.known.delete(sub.channel.name);
        if (result.recovered === false && result.recoverable) {
          this.sendEvent('recovery-failed', JSON.stringify({ channel: sub.channel.name, position: result.position }), null);
        }
        recovered(sub, pubs);
      },
      page: recovered,
    };
  }

  override deliver(sub: Subscription, pub: Publication): void {
    // A latest-value channel: under backpressure only the newest event per key is kept (its id
    // is the position when it came), never a disconnect.
    if (sub.channel.options.delivery === 'latest') this.offerLatest(latestKey(sub, pub), sseEvent(sub.channel.name, pub.data, this.eventId()));
    else this.sendEvent(sub.channel.name, pub.data);
  }

  override push(kind: PushKind, frame: Buffer): void {
    // A client event is dropped, never queued, while the stream is backed up (at most once).
    if (kind === 'emit' && this.queuedBytes > this.limits.maxQueueBytes / 2) return;
    if (kind !== 'resubscribe') {
      this.sendEvent(kind, frame.toString('utf8'), null);
      return;
    }
    // A gap cannot be mended inside one SSE stream: end it, and the browser reconnects with
    // its Last-Event-ID and recovers.
    this.close(CloseCode.INSUFFICIENT_STATE);
  }

  protected override get pingIntervalMs(): number {
    return this.node.options.sse.keepAliveMs;
  }

  /** A keep-alive comment; SSE clients cannot answer, so no pong is expected. */
  protected override ping(now: number): void {
    this.nextPingAt = now + this.pingIntervalMs;
    this.enqueue(KEEP_ALIVE);
  }

  protected override encodeDisconnect(code: CloseCodeValue, reason: string): Buffer {
    const frame = super.encodeDisconnect(code, reason);
    return Buffer.from(`event: disconnect\ndata: ${frame.toString('utf8')}\n\n`);
  }
}
