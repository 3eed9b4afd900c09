import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Identity } from '../auth/verifier.js';
import type { Limits } from '../config/options.js';
import type { Node } from '../hub/node.js';
import type { OpenedResult, PushKind, Session, SubscribeAnswer } from '../hub/session.js';
import type { Subscription } from '../hub/subscription.js';
import { presenceUsers } from '../presence/presence-store.js';
import { CLOSE_REASONS, CloseCode, shouldReconnect, type CloseCodeValue } from '../protocol/close-codes.js';
import { isMethod, parseCommandLine, parseParams, readEnvelope, type Envelope, type Method, type Params } from '../protocol/commands.js';
import { HubError, toWireError } from '../protocol/errors.js';
import {
  encodeDisconnectPush,
  encodeError,
  encodePublicationPush,
  encodeReply,
  encodeReplyWithPublications,
  PING_PUSH,
} from '../protocol/pushes.js';
import type { Publication } from '../stream/types.js';
import { connectResult } from './connect-reply.js';
import { OutboundQueue, type FlushScheduler, type JoinCache } from './outbound-queue.js';
import { TokenBucket } from '../limits/token-bucket.js';
import type { Transport } from './transport.js';
import type { CodecName } from '../codec/codec.js';
import { decodeMsgpackFrame, jsonToMsgpack } from '../codec/msgpack.js';
import { LatestOutbox, type LatestHost } from './latest-values.js';

/** Commands accepted but not yet answered; more are refused with 111. */
const MAX_PENDING_COMMANDS = 256;
/** RFC 6455 allows at most 123 bytes of close reason. */
const MAX_CLOSE_REASON_BYTES = 123;

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
}

/**
 * One client session over one transport: parses its commands, runs them through the Node in
 * the order they arrived, and queues its output for coalesced writes. Knows nothing of sockets:
 * it writes to a `Transport`.
 */
export class Connection implements Session {
  /** 96 random bits, URL-safe: short, because it travels in every publication's `info`. */
  readonly id = randomBytes(12).toString('base64url');
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
  private readonly queue: OutboundQueue;
  private flushScheduled = false;
  private pendingClose: CloseCodeValue | undefined;
  private readonly bucket: TokenBucket;
  private readonly eventBucket: TokenBucket;
  /** Latest values held back while the socket is backed up (latest-value channels, client events). */
  private latest: LatestOutbox | undefined;
  private violations = 0;
  private commands: Promise<void> = Promise.resolve();
  private pendingCommands = 0;
  private refreshing = false;
  protected readonly limits: Limits;

  constructor(
    protected readonly node: Node,
    readonly transport: Transport,
    readonly handshake: HandshakeInfo,
    private readonly scheduler: FlushScheduler,
  ) {
    this.limits = node.options.limits;
    this.codec = handshake.codec ?? 'json';
    this.queue = new OutboundQueue(this.codec === 'msgpack' ? NO_SEPARATOR : NEWLINE);
    const now = Date.now();
    this.connectDeadline = now + this.limits.connectTimeoutMs;
    this.bucket = new TokenBucket(this.limits.commandRate.perSecond, this.limits.commandRate.burst, now);
    this.eventBucket = new TokenBucket(this.limits.clientEventRate.perSecond, this.limits.clientEventRate.burst, now);
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
    return this.queue.bytes + this.transport.bufferedAmount;
  }

  // ---- inbound ---------------------------------------------------------------------------

  /** Handles one inbound text frame: one or more `\n`-separated JSON commands. */
  handleFrame(text: string): void {
    if (this.state === 'closed') return;
    let start = 0;
    while (start <= text.length) {
      let end = text.indexOf('\n', start);
      if (end === -1) end = text.length;
      const line = text.slice(start, end).trim();
      start = end + 1;
      if (line !== '') this.handleLine(line);
      if (this.closed) return;
    }
  }

  /**
   * A binary frame, which the protocol does not allow: each command in it that carries an id
   * is answered with 107, so a client never waits for a reply that cannot come.
   */
  rejectBinary(data: Buffer): void {
    const text = data.toString('utf8');
    let answered = false;
    for (const line of text.split('\n')) {
      const id = /"id"\s*:\s*(\d{1,15})/.exec(line)?.[1];
      if (id === undefined) continue;
      answered = true;
      this.violation(
        CloseCode.PROTOCOL_ERROR,
        Number(id),
        new HubError(107, 'binary frames are not supported: send commands as text frames'),
      );
      if (this.closed) return;
    }
    if (!answered)
      this.violation(
        CloseCode.PROTOCOL_ERROR,
        undefined,
        new HubError(107, 'binary frames are not supported: send commands as text frames'),
      );
  }

  /**
   * One inbound binary frame of a MessagePack connection: one or more MessagePack values, each
   * one command. On a JSON connection binary frames are refused (107).
   */
  handleBinary(data: Buffer): void {
    if (this.state === 'closed') return;
    if (this.codec !== 'msgpack') {
      this.rejectBinary(data);
      return;
    }
    for (const decoded of decodeMsgpackFrame(data, this.limits.maxJsonDepth)) {
      if (decoded.ok) this.handleCommand(decoded.value);
      else this.violation(CloseCode.PROTOCOL_ERROR, undefined, decoded.error);
      if (this.closed) return;
    }
  }

  private handleLine(line: string): void {
    if (this.codec === 'msgpack') {
      this.violation(CloseCode.PROTOCOL_ERROR, undefined, new HubError(107, 'text frames are not supported with switchboard.v1.msgpack'));
      return;
    }
    const decoded = parseCommandLine(line, this.limits.maxJsonDepth);
    if (!decoded.ok) {
      this.violation(CloseCode.PROTOCOL_ERROR, decoded.id, decoded.error);
      return;
    }
    this.handleCommand(decoded.value);
  }

  /** One decoded command (whatever the codec): checked, then queued behind the ones before it. */
  private handleCommand(parsed: unknown): void {
    const env = readEnvelope(parsed);
    if (typeof env === 'string') {
      const id = typeof (parsed as { id?: unknown })?.id === 'number' ? (parsed as { id: number }).id : undefined;
      this.violation(CloseCode.PROTOCOL_ERROR, Number.isSafeInteger(id) && id! > 0 ? id : undefined, new HubError(107, env));
      return;
    }
    if (env.method === 'pong' && env.id === undefined) {
      this.pongDeadline = 0;
      return;
    }
    if (env.method === 'emit' && env.id === undefined) {
      // A client event: no reply, its own rate (past it, dropped), in order with the commands.
      if (!this.eventBucket.take()) {
        this.node.metrics.clientEventDropped();
        return;
      }
      this.commands = this.commands.then(() => this.emitEvent(env.params));
      return;
    }
    if (env.id === undefined) {
      this.violation(CloseCode.PROTOCOL_ERROR, undefined, new HubError(107, 'id: required for commands'));
      return;
    }
    if (!this.bucket.take() || this.pendingCommands >= MAX_PENDING_COMMANDS) {
      this.violation(CloseCode.RATE_LIMITED, env.id, new HubError(111));
      return;
    }
    // Commands run one after another, in the order sent: a subscribe batched behind its
    // connect sees the connection connected, and a client's publishes keep their order.
    this.pendingCommands += 1;
    const command = env as Envelope & { id: number };
    this.commands = this.commands.then(async () => {
      try {
        await this.dispatch(command);
      } finally {
        this.pendingCommands -= 1;
      }
    });
  }

  /** Sends one client event; a refused one is answered by an id-less error. */
  private async emitEvent(params: unknown): Promise<void> {
    if (this.state !== 'connected') return;
    const parsed = parseParams('emit', params);
    if (!parsed.ok) {
      this.violation(CloseCode.PROTOCOL_ERROR, undefined, new HubError(107, `emit: ${parsed.error}`));
      return;
    }
    try {
      await this.node.commands.emit(this, parsed.params);
    } catch (err) {
      if (this.closed) return;
      if (!(err instanceof HubError)) this.node.commandFailed('emit', this.id, err);
      this.sendText(encodeError(undefined, toWireError(err)));
    }
  }

  /** Answers a rejected command; too many in a row close the connection. */
  private violation(code: CloseCodeValue, id: number | undefined, err: HubError): void {
    this.sendText(encodeError(id, err.toWire()));
    this.violations += 1;
    // The error replies go out first: a breach gets its errors, then the close.
    if (this.violations >= this.limits.maxViolations) this.closeAfterReply(code);
  }

  private async dispatch(env: Envelope & { id: number }): Promise<void> {
    const { id } = env;
    try {
      if (!isMethod(env.method)) throw new HubError(104, `method not found: ${env.method}`);
      this.node.metrics.command(env.method);
      const parsed = parseParams(env.method, env.params);
      if (!parsed.ok) throw new HubError(107, parsed.error);
      if (env.method !== 'connect' && this.state !== 'connected') throw new HubError(110);
      const reply = await this.run(env.method, parsed.params, id);
      this.violations = 0;
      if (reply !== undefined && this.state !== 'closed') this.sendText(reply);
    } catch (err) {
      if (this.state === 'closed') return;
      if (err instanceof HubError && (err.code === 107 || err.code === 104)) this.violations += 1;
      const wire = toWireError(err);
      // Anything but a HubError is a bug or a backend fault: the client gets 100, the log the details.
      if (!(err instanceof HubError)) this.node.commandFailed(env.method, this.id, err);
      this.node.metrics.error(wire.code);
      this.sendText(encodeError(id, wire));
      if (this.violations >= this.limits.maxViolations) this.closeAfterReply(CloseCode.PROTOCOL_ERROR);
    }
  }

  /** Runs one command; returns the encoded reply (subscribe answers through its SubscribeAnswer). */
  private async run(method: Method, params: Params<Method>, id: number): Promise<string | undefined> {
    const node = this.node;
    const commands = node.commands;
    switch (method) {
      case 'connect':
        return encodeReply(id, await this.connect(params as Params<'connect'>));
      case 'refresh':
        return encodeReply(id, await this.refresh((params as Params<'refresh'>).token));
      case 'subscribe': {
        const p = params as Params<'subscribe'>;
        await node.subscribe(this, p.channel, p.since, this.subscribeAnswer(id));
        return undefined;
      }
      case 'unsubscribe':
        node.unsubscribe(this, (params as Params<'unsubscribe'>).channel);
        return encodeReply(id, {});
      case 'publish':
        return encodeReply(id, await commands.publish(this, params as Params<'publish'>));
      case 'history': {
        const read = await commands.history(this, params as Params<'history'>);
        return encodeReplyWithPublications(id, read.latest ? { position: read.position, latest: true } : { position: read.position }, read.publications);
      }
      case 'presence': {
        const clients = await commands.presence(this, (params as Params<'presence'>).channel);
        return encodeReply(id, { clients, users: presenceUsers(clients) });
      }
      case 'typing':
        await commands.typing(this, params as Params<'typing'>);
        return encodeReply(id, {});
      case 'markRead':
        return encodeReply(id, await commands.markRead(this, params as Params<'markRead'>));
      case 'readState':
        return encodeReply(id, await commands.readState(this, (params as Params<'readState'>).channel));
      case 'readers':
        return encodeReply(id, { readers: await commands.readers(this, (params as Params<'readers'>).channel) });
      case 'setStatus':
        return encodeReply(id, await commands.setStatus(this, (params as Params<'setStatus'>).status));
      case 'statuses':
        return encodeReply(id, { users: await commands.statuses((params as Params<'statuses'>).users) });
      case 'rpc': {
        const p = params as Params<'rpc'>;
        return encodeReply(id, { data: await commands.rpc(this, p.method, p.data) });
      }
      case 'ping':
        return encodeReply(id, {});
      case 'emit':
        // With an id, a client event is acknowledged (the SDK sends them without).
        await commands.emit(this, params as Params<'emit'>);
        return encodeReply(id, {});
    }
  }

  /** A subscribe is answered by one reply (with the first page), then pages as pushes. */
  private subscribeAnswer(id: number): SubscribeAnswer {
    return {
      opened: (_sub: Subscription, result: OpenedResult, pubs: readonly Publication[]) => {
        this.sendText(encodeReplyWithPublications(id, { ...result }, pubs));
      },
      page: (sub: Subscription, pubs: readonly Publication[]) => {
        // As live: the first publication of a stream names its epoch.
        for (const pub of pubs)
          this.enqueue(Buffer.from(encodePublicationPush(sub.channel.name, pub, pub.offset === 1 ? sub.epoch : undefined)));
      },
    };
  }

  private async connect(params: Params<'connect'>): Promise<Record<string, unknown>> {
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
    return connectResult(this.id, identity, this.limits);
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

  deliver(sub: Subscription, pub: Publication, frame: Buffer): void {
    if (sub.channel.options.delivery === 'latest') this.offerLatest(`p${sub.channel.name}\0${pub.info?.key ?? ''}`, frame);
    else this.enqueue(frame);
  }

  push(_kind: PushKind, frame: Buffer, latestKey?: string): void {
    if (latestKey !== undefined) this.offerLatest(latestKey, frame);
    else this.enqueue(frame);
  }

  /**
   * A latest-value frame: queued while the connection keeps up (below half the queue cap, so
   * they never take it near a disconnect); otherwise held as the newest of its key until the
   * socket drains (nothing older of that key is sent after it).
   */
  private offerLatest(key: string, frame: Buffer): void {
    if (this.state === 'closed') return;
    const latest = (this.latest ??= new LatestOutbox(this.latestHost(), this.limits.maxQueueBytes / 2, this.limits.maxLatestEntries));
    if (latest.holding || this.queuedBytes + frame.length > latest.bound) latest.hold(key, this.encodeOut(frame));
    else this.enqueue(frame);
  }

  private latestHost(): LatestHost {
    return {
      queued: () => this.queuedBytes,
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

/** A close reason cut to 123 bytes of UTF-8, never inside a character. */
export function clampReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  let out = '';
  let bytes = 0;
  for (const ch of reason) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > MAX_CLOSE_REASON_BYTES) break;
    out += ch;
    bytes += n;
  }
  return out;
}
