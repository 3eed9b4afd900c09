import type { Publication, StreamPosition } from '../stream/types.js';
import type { Node } from '../hub/node.js';
import { CloseCode, type CloseCodeValue } from '../protocol/close-codes.js';
import { encodeEventId } from '../protocol/sse-event-id.js';
import type { Transport } from './transport.js';
import { Connection, type HandshakeInfo, type PushKind } from './connection.js';
import type { Subscription } from '../hub/subscription.js';

const KEEP_ALIVE = Buffer.from(': keep-alive\n\n');

/**
 * A server-to-client session over Server-Sent Events: no commands, a fixed list of channels,
 * and every event id holding the positions of all of them (see protocol/sse-event-id.ts).
 */
export class SseConnection extends Connection {
  /** Channels in the order of the request URL; event ids list positions in this order. */
  private readonly order: string[];
  /** Positions of channels not (yet) live, as last known (from Last-Event-ID or the reply). */
  private readonly known = new Map<string, StreamPosition>();

  constructor(node: Node, transport: Transport, handshake: HandshakeInfo, channels: string[]) {
    super(node, transport, handshake);
    this.order = channels;
  }

  /** Records where a channel stands before it goes live, for the ids of events sent meanwhile. */
  setPosition(channel: string, position: StreamPosition): void {
    this.known.set(channel, position);
  }

  eventId(): string {
    return encodeEventId(
      this.order.map((name) => {
        const sub = this.subscriptions.get(name);
        return sub?.active ? { offset: sub.offset, epoch: sub.epoch } : (this.known.get(name) ?? { offset: 0, epoch: '' });
      }),
    );
  }

  /** Sends one SSE event; `data` must be single-line JSON. */
  sendEvent(event: string, data: string, withId = true): void {
    this.enqueue(Buffer.from(`${withId ? `id: ${this.eventId()}\n` : ''}event: ${event}\ndata: ${data}\n\n`));
  }

  /** A recovered publication, sent before the subscription is live. */
  sendRecovered(channel: string, epoch: string, pub: Publication): void {
    this.known.set(channel, { offset: pub.offset, epoch });
    this.sendEvent(channel, pub.data);
  }

  override deliver(sub: Subscription, pub: Publication): void {
    this.sendEvent(sub.channel.name, pub.data);
  }

  override push(kind: PushKind, frame: Buffer): void {
    if (kind !== 'resubscribe') {
      this.sendEvent(kind, frame.toString('utf8'), false);
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
