import type { IncomingHttpHeaders } from 'node:http';
import type { Identity } from '../auth/verifier.js';
import type { Limits } from '../config/options.js';
import type { Node } from '../hub/node.js';
import type { PushKind, Session } from '../hub/session.js';
import type { Subscription } from '../hub/subscription.js';
import { CLOSE_REASONS, CloseCode, shouldReconnect, type CloseCodeValue } from '../protocol/close-codes.js';
import type { Method, Params } from '../protocol/commands.js';
import { HubError } from '../protocol/errors.js';
import { encodeDisconnectPush, encodeReply, PING_PUSH, withMembers } from '../protocol/pushes.js';
import { encodeServerSide, subscribeServerSide } from './server-side-subs.js';
import type { Publication } from '../stream/types.js';
import { connectResult } from './connect-reply.js';
import { OutboundQueue, type FlushScheduler, type JoinCache } from './outbound-queue.js';
import type { Transport } from './transport.js';
import type { CodecName, ProtocolVersion } from '../codec/codec.js';
import type { PublicationFrames } from '../hub/publication-frames.js';
import { jsonToMsgpack } from '../codec/msgpack.js';
import { LatestOutbox, type LatestHost } from './latest-values.js';
import { clampReason } from './close-reason.js';
import { newClientId } from './client-id.js';
import { runHubCommand } from './command-table.js';
import { CommandIntake } from './command-intake.js';
import { readBinaryFrame, readTextFrame, refuseBinary } from './inbound-frames.js';

export { clampReason };

const PING_FRAME = Buffer.from(PING_PUSH);
const NEWLINE = Buffer.from('\n');
const NO_SEPARATOR = Buffer.alloc(0);

export type ConnectionState = 'connecting' | 'connected' | 'closed';

/** Facts about the handshake, captured by the transport. */
export interface HandshakeInfo {
  ip: string;
  headers: IncomingHttpHeaders;
  /** Identity from a token the handshake carried, already verified. */
  identity?: Identity;
  /** The codec the WebSocket subprotocol chose; JSON when absent. */
  codec?: CodecName;
  /** The protocol version the WebSocket subprotocol chose; 1 when absent. */
  protocolVersion?: ProtocolVersion;
}

/**
 * One client session over one transport: parses its commands, runs them through the Node in
 * the order they arrived, and queues its output for coalesced writes. Knows nothing of sockets:
 * it writes to a `Transport`.
 */
export class Connection implements Session {
  /** Unique across nodes and short, because it travels in publications' publisher info (client-id.ts). */
  readonly id = newClientId();
  state: ConnectionState = 'connecting';
  identity: Identity | undefined;
  clientName: string | undefined;

  /** Heartbeat bookkeeping, driven by the Node's one timer. */
  connectDeadline: number;
  nextPingAt = 0;
  pongDeadline = 0;
  /** Since when the queue has been above limits.maxQueueBytes (0: it is not). */
  private laggingSince = 0;

  /** MessagePack (binary frames of concatenated values) or JSON (text frames of `\n`-joined lines). */
  readonly codec: CodecName;
  /** Protocol v1, or v2 (compact publications). */
  readonly protocolVersion: ProtocolVersion;
  private readonly queue: OutboundQueue;
  private flushScheduled = false;
  private pendingClose: CloseCodeValue | undefined;
  /** Latest values held back while the socket is backed up (latest-value channels, client events). */
  private latest: LatestOutbox | undefined;
  private refreshing = false;
  /** Output held back while a connect subscribes server-side channels (released after its reply). */
  private held: Buffer[] | undefined;
  private heldBytes = 0;
  protected readonly limits: Limits;
  /** Checks, orders and answers the commands inbound-frames.ts decodes. */
  private readonly intake: CommandIntake;

  constructor(
    protected readonly node: Node,
    readonly transport: Transport,
    readonly handshake: HandshakeInfo,
    private readonly scheduler: FlushScheduler,
  ) {
    this.limits = node.options.limits;
    this.codec = handshake.codec ?? 'json';
    this.protocolVersion = handshake.protocolVersion ?? 1;
    this.queue = new OutboundQueue(this.codec === 'msgpack' ? NO_SEPARATOR : NEWLINE);
    const now = Date.now();
    this.connectDeadline = now + this.limits.connectTimeoutMs;
    this.intake = new CommandIntake(
      node,
      this.limits,
      {
        session: this,
        isConnected: () => this.state === 'connected',
        pong: () => {
          this.pongDeadline = 0;
        },
        run: (method, params, id) => this.run(method, params, id),
        publishNow: (params) => this.node.commands.publishNow(this, params),
        closeAfterReply: (code) => this.closeAfterReply(code),
      },
      now,
    );
  }

  get user(): string {
    return this.identity?.user ?? '';
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  get transportKind(): 'websocket' | 'sse' {
    return this.transport.kind;
  }

  get headers(): IncomingHttpHeaders {
    return this.handshake.headers;
  }

  get queuedBytes(): number {
    return this.queue.bytes + this.transport.bufferedAmount + this.heldBytes;
  }

  // ---- inbound ---------------------------------------------------------------------------

  /** Handles one inbound text frame: one or more `\n`-separated JSON commands (inbound-frames.ts). */
  handleFrame(text: string): void {
    if (this.state === 'closed') return;
    readTextFrame(text, this.codec, this.limits.maxJsonDepth, this.intake);
  }

  /**
   * A binary frame, which the JSON protocol does not allow: each command in it that carries an
   * id is answered with 107, so a client never waits for a reply that cannot come.
   */
  rejectBinary(data: Buffer): void {
    refuseBinary(data, this.intake);
  }

  /**
   * One inbound binary frame of a MessagePack connection: one or more MessagePack values, each
   * one command. On a JSON connection binary frames are refused (107).
   */
  handleBinary(data: Buffer): void {
    if (this.state === 'closed') return;
    readBinaryFrame(data, this.codec, this.limits.maxJsonDepth, this.intake);
  }

  /** Runs one command; returns the encoded reply (the rest of the table: command-table.ts). */
  private async run(method: Method, params: Params<Method>, id: number): Promise<string | undefined> {
    if (method === 'connect') return this.connect(params as Params<'connect'>, id);
    if (method === 'refresh') return encodeReply(id, await this.refresh((params as Params<'refresh'>).token));
    return runHubCommand(this.node, this, method, params, id);
  }

  private async connect(params: Params<'connect'>, id: number): Promise<string | undefined> {
    if (this.state !== 'connecting') throw new HubError(113);
    let identity = this.handshake.identity;
    // With proxy.connectMode "always", the backend decides even when the handshake carried a token.
    if (params.token !== undefined || !identity || this.node.proxy?.authenticates(true)) {
      if (params.name !== undefined) this.clientName = params.name;
      try {
        identity = await this.node.identify(this, params.token);
      } catch (err) {
        // A refused token ends the session: the client must not retry it unchanged. A backend
        // that is down or slow (connect proxy, 114) closes with a code that reconnects.
        const temporary = err instanceof HubError && err.temporary;
        this.closeAfterReply(
          temporary ? CloseCode.INTERNAL : err instanceof HubError && err.code === 109 ? CloseCode.TOKEN_EXPIRED : CloseCode.UNAUTHORIZED,
        );
        throw err;
      }
    }
    if (this.state !== 'connecting') throw new HubError(113);
    if (params.name !== undefined) this.clientName = params.name;
    try {
      await this.establish(identity);
    } catch (err) {
      // Refused by a limit or the onConnect hook: the session ends after the error reply.
      // A temporary failure (a hook timed out, a backend down) closes with a code that reconnects.
      const code =
        err instanceof HubError && err.code === 106
          ? CloseCode.CONNECTION_LIMIT
          : !(err instanceof HubError) || err.temporary
            ? CloseCode.INTERNAL
            : CloseCode.UNAUTHORIZED;
      if (!this.closed && this.pendingClose === undefined) this.closeAfterReply(code);
      throw err;
    }
    const result = connectResult(this.id, identity, this.limits);
    // The version the subprotocol chose (the key keeps its place: v1 replies are unchanged).
    if (this.protocolVersion !== 1) result.version = this.protocolVersion;
    if (!identity.subscriptions?.length) return encodeReply(id, result);
    return this.connectServerSide(identity.subscriptions, params.subs, id, result);
  }

  /**
   * Subscribes the server-side channels, each refused alone (the connection stays), and answers
   * with the connect reply that states them. Output queued meanwhile (recovery pages, live
   * publications, presence) is held and follows the reply, so every channel's publications
   * come after the reply that opens it.
   */
  private async connectServerSide(
    channels: readonly string[],
    since: Params<'connect'>['subs'],
    id: number,
    result: Record<string, unknown>,
  ): Promise<undefined> {
    this.held = [];
    try {
      const outcome = await subscribeServerSide(this.node, this, channels, since);
      if (this.closed) return undefined;
      this.releaseHeld(`{"id":${id},"result":${withMembers(result, encodeServerSide(outcome, this.protocolVersion))}}`);
    } finally {
      this.releaseHeld();
    }
    return undefined;
  }

  /** Ends the hold: `first` (the connect reply) is queued before everything held. */
  private releaseHeld(first?: string): void {
    const held = this.held;
    if (held === undefined) return;
    this.held = undefined;
    this.heldBytes = 0;
    if (first !== undefined) this.sendText(first);
    for (const frame of held) this.enqueue(frame);
  }

  /**
   * A new token for the same user: it must expire (a refresh cannot make a session permanent),
   * and the session is narrowed to what it grants.
   */
  private async refresh(token: string): Promise<Record<string, unknown>> {
    const identity = await this.node.verifier.verify(token);
    if (this.closed) throw new HubError(110, 'connection closed');
    if (identity.user !== this.user) throw new HubError(101, 'token names another user');
    if (identity.expires === undefined) throw new HubError(101, 'refresh token must have exp');
    this.identity = identity;
    this.node.reauthorize(this);
    return { expires: identity.expires };
  }

  /**
   * A proxy-authenticated session reached its expiry: the refresh proxy extends it, or it ends
   * (4xx, `expired`: close 4007-like TOKEN_EXPIRED; backend down or slow: a close that reconnects).
   */
  private refreshThroughProxy(): void {
    if (this.refreshing) return;
    this.refreshing = true;
    this.node.background(
      this.node
        .proxy!.refresh(this.node.context(this))
        .then(
          (expires) => {
            if (this.closed) return;
            if (expires === undefined || !this.identity) this.close(CloseCode.TOKEN_EXPIRED);
            else this.identity = { ...this.identity, expires };
          },
          (err: unknown) => {
            if (!this.closed) this.close(err instanceof HubError && !err.temporary ? CloseCode.TOKEN_EXPIRED : CloseCode.INTERNAL);
          },
        )
        .finally(() => {
          this.refreshing = false;
        }),
    );
  }

  /** Makes the connection connected as `identity` (per-user cap and the onConnect hook apply). */
  async establish(identity: Identity): Promise<void> {
    this.identity = identity;
    await this.node.admit(this);
    if (this.closed) throw new HubError(110, 'connection closed');
    this.state = 'connected';
    this.nextPingAt = Date.now() + this.pingIntervalMs;
  }

  // ---- outbound --------------------------------------------------------------------------

  deliver(sub: Subscription, pub: Publication, frames: PublicationFrames): void {
    const frame = frames.frame(this.protocolVersion);
    if (sub.channel.options.delivery === 'latest') this.offerLatest(latestKey(sub, pub), frame);
    else this.enqueue(frame);
  }

  push(_kind: PushKind, frame: Buffer, latestKey?: string): void {
    if (latestKey !== undefined) this.offerLatest(latestKey, frame);
    else this.enqueue(frame);
  }

  unsubscribed(channel: string): void {
    this.latest?.forget(channel);
  }

  /**
   * A latest-value frame: queued while the connection keeps up (its socket holds at most
   * LATEST_SOCKET_BYTES unwritten, and below half the queue cap, so they never take it near a
   * disconnect); otherwise held as the newest of its key until the socket drains (nothing older
   * of that key is sent after it).
   */
  protected offerLatest(key: string, frame: Buffer): void {
    if (this.state === 'closed') return;
    const latest = (this.latest ??= new LatestOutbox(this.latestHost(), this.limits.maxQueueBytes / 2, this.limits.maxLatestEntries));
    if (latest.mustHold(frame.length)) latest.hold(key, this.encodeOut(frame));
    else this.enqueue(frame);
  }

  private latestHost(): LatestHost {
    return {
      queued: () => this.queuedBytes,
      socketBuffered: () => this.transport.bufferedAmount,
      isClosed: () => this.closed,
      queueEncoded: (frame) => {
        this.queue.push(frame);
        this.scheduleFlush();
      },
      ...(this.transport.onDrain ? { onDrain: (cb: () => void) => this.transport.onDrain!(cb) } : {}),
      dropped: () => this.node.metrics.latestDropped(),
    };
  }

  /** Heartbeat: connect deadline, pong deadline, token expiry, sustained lag, then a ping. */
  beat(now: number): void {
    if (this.state === 'connecting') {
      if (now >= this.connectDeadline) this.close(CloseCode.CONNECT_TIMEOUT);
      return;
    }
    if (this.state === 'closed') return;
    if (this.pongDeadline !== 0 && now >= this.pongDeadline) {
      this.close(CloseCode.NO_PONG);
      return;
    }
    const expires = this.identity?.expires;
    if (expires !== undefined && now >= expires * 1000) {
      if (this.identity?.proxied && this.node.proxy?.refreshes) this.refreshThroughProxy();
      else this.close(CloseCode.TOKEN_EXPIRED);
      return;
    }
    if (this.checkLag(now)) return;
    if (now >= this.nextPingAt) this.ping(now);
  }

  protected get pingIntervalMs(): number {
    return this.limits.pingIntervalMs;
  }

  /** Sends a ping the client must answer with a pong. */
  protected ping(now: number): void {
    this.nextPingAt = now + this.pingIntervalMs;
    if (this.pongDeadline === 0) this.pongDeadline = now + this.limits.pongTimeoutMs;
    this.enqueue(PING_FRAME);
  }

  /**
   * A slow consumer is one whose queue stays above limits.maxQueueBytes for slowConsumerMs, or
   * passes 4 × it at any moment (the memory bound); true when it was closed.
   */
  private checkLag(now: number): boolean {
    const queued = this.queuedBytes;
    if (queued > 4 * this.limits.maxQueueBytes) {
      this.close(CloseCode.SLOW_CONSUMER);
      return true;
    }
    if (queued <= this.limits.maxQueueBytes) {
      this.laggingSince = 0;
      return false;
    }
    if (this.laggingSince === 0) this.laggingSince = now;
    else if (now - this.laggingSince >= this.limits.slowConsumerMs) {
      this.close(CloseCode.SLOW_CONSUMER);
      return true;
    }
    return false;
  }

  /** Queues one message (already encoded once for all its receivers) for the next write. */
  enqueue(frame: Buffer): void {
    if (this.state === 'closed') return;
    if (this.held !== undefined) {
      this.held.push(frame);
      this.heldBytes += frame.length;
      // Held during a connect's server-side subscribes: the same hard bound as the queue's.
      if (this.heldBytes > 4 * this.limits.maxQueueBytes) this.close(CloseCode.SLOW_CONSUMER);
      return;
    }
    this.queue.push(this.encodeOut(frame));
    // The hot path checks only the hard bound; sustained lag is judged per flush and heartbeat.
    if (this.queue.bytes > 4 * this.limits.maxQueueBytes) {
      this.close(CloseCode.SLOW_CONSUMER);
      return;
    }
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.scheduler.schedule(this);
    }
  }

  sendText(text: string): void {
    this.enqueue(Buffer.from(text));
  }

  /** Writes everything queued as one frame. Called by the FlushScheduler. */
  flush(cache?: JoinCache): void {
    this.flushScheduled = false;
    if (this.state === 'closed') return;
    const frame = this.queue.drain(cache);
    if (frame) this.transport.send(frame);
    if (this.checkLag(Date.now())) return;
    if (this.pendingClose !== undefined) this.close(this.pendingClose);
  }

  /** Closes once the reply being prepared (queued in this turn or the next) has been written. */
  closeAfterReply(code: CloseCodeValue): void {
    this.pendingClose = code;
    setImmediate(() => {
      if (!this.flushScheduled && !this.closed) {
        this.flushScheduled = true;
        this.scheduler.schedule(this);
      }
    });
  }

  // ---- closing ---------------------------------------------------------------------------

  /**
   * Tells the client why (a `disconnect` push), then closes. A slow consumer's socket cannot
   * take even that, so it is dropped at once. The session is released from the Node whatever
   * the transport does.
   */
  close(code: CloseCodeValue, reason: string = CLOSE_REASONS[code]): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.queue.clear();
    this.latest?.clear();
    const clamped = clampReason(reason);
    try {
      if (code === CloseCode.SLOW_CONSUMER) {
        this.transport.terminate();
      } else {
        this.transport.send(this.encodeOut(this.encodeDisconnect(code, clamped)));
        this.transport.close(code, clamped);
      }
    } catch {
      try {
        this.transport.terminate();
      } catch {
        // The socket is gone already.
      }
    } finally {
      this.node.release(this, code);
    }
  }

  /**
   * A message the hub encoded as JSON, in this connection's codec. A Buffer shared by a
   * broadcast is transcoded once for all MessagePack receivers (codec/msgpack.ts).
   */
  private encodeOut(frame: Buffer): Buffer {
    // Memoized per Buffer: shared frames (broadcasts, the ping) are transcoded once.
    return this.codec === 'msgpack' ? jsonToMsgpack(frame) : frame;
  }

  protected encodeDisconnect(code: CloseCodeValue, reason: string): Buffer {
    return Buffer.from(encodeDisconnectPush(code, reason, shouldReconnect(code)));
  }

  /** The transport went away (client closed, network error). */
  transportClosed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.queue.clear();
    this.latest?.clear();
    this.node.release(this, CloseCode.GOING_AWAY);
  }
}

/** The key a latest-value publication is held under in a connection's LatestOutbox (see LatestOutbox.forget). */
export function latestKey(sub: Subscription, pub: Publication): string {
  return `p${sub.channel.name}\0${pub.info?.key ?? ''}`;
}
