import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Identity } from '../auth/verifier.js';
import type { Limits } from '../config/options.js';
import { CLOSE_REASONS, CloseCode, shouldReconnect, type CloseCodeValue } from '../protocol/close-codes.js';
import { isMethod, parseParams, readEnvelope, type Envelope, type Method, type Params, PROTOCOL_VERSION } from '../protocol/commands.js';
import { HubError, toWireError } from '../protocol/errors.js';
import { encodeDisconnectPush, encodeError, encodeReply, PING_PUSH } from '../protocol/pushes.js';
import type { Publication } from '../stream/types.js';
import type { Transport } from './transport.js';
import type { Node } from '../hub/node.js';
import { OutboundQueue, type JoinCache } from './outbound-queue.js';
import type { Subscription } from '../hub/subscription.js';
import { presenceUsers } from '../presence/presence-store.js';
import { TokenBucket } from './token-bucket.js';

/** Commands accepted but not yet answered; more are refused with 111. */
const MAX_PENDING_COMMANDS = 256;

const PING_FRAME = Buffer.from(PING_PUSH);

/**
 * Kinds of server pushes besides publications. `resubscribe` is an unsubscribe push that asks
 * the client to resubscribe at once with recovery (code 2001).
 */
export type PushKind = 'join' | 'leave' | 'typing' | 'read' | 'unsubscribe' | 'resubscribe';

export type ConnectionState = 'connecting' | 'connected' | 'closed';

/** Facts about the handshake, captured by the transport. */
export interface HandshakeInfo {
  ip: string;
  headers: IncomingHttpHeaders;
  /** Identity from a token the handshake carried, already verified. */
  identity?: Identity;
}

/**
 * One client session over one transport: parses its commands, answers them through the Node,
 * and queues its output for coalesced writes. Knows nothing of sockets.
 */
export class Connection {
  /** 96 random bits, URL-safe: short, because it travels in every publication's `info`. */
  readonly id = randomBytes(12).toString('base64url');
  state: ConnectionState = 'connecting';
  identity: Identity | undefined;
  readonly subscriptions = new Map<string, Subscription>();

  /** Heartbeat bookkeeping, driven by the Node's one timer. */
  connectDeadline: number;
  nextPingAt = 0;
  pongDeadline = 0;

  private readonly queue = new OutboundQueue();
  private flushScheduled = false;
  private pendingClose: CloseCodeValue | undefined;
  private readonly bucket: TokenBucket;
  private violations = 0;
  private commands: Promise<void> = Promise.resolve();
  private pendingCommands = 0;
  private readonly limits: Limits;

  constructor(
    protected readonly node: Node,
    readonly transport: Transport,
    readonly handshake: HandshakeInfo,
  ) {
    this.limits = node.options.limits;
    const now = Date.now();
    this.connectDeadline = now + this.limits.connectTimeoutMs;
    this.bucket = new TokenBucket(this.limits.commandRate.perSecond, this.limits.commandRate.burst, now);
  }

  get user(): string {
    return this.identity?.user ?? '';
  }

  get closed(): boolean {
    return this.state === 'closed';
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

  /** A frame the protocol does not allow (binary). */
  rejectFrame(message: string): void {
    this.violation(CloseCode.PROTOCOL_ERROR, undefined, new HubError(107, message));
  }

  private handleLine(line: string): void {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.violation(CloseCode.PROTOCOL_ERROR, undefined, new HubError(107, 'malformed JSON'));
      return;
    }
    const env = readEnvelope(value);
    if (typeof env === 'string') {
      const id = typeof (value as { id?: unknown })?.id === 'number' ? (value as { id: number }).id : undefined;
      this.violation(CloseCode.PROTOCOL_ERROR, Number.isSafeInteger(id) && id! > 0 ? id : undefined, new HubError(107, env));
      return;
    }
    if (env.method === 'pong' && env.id === undefined) {
      this.pongDeadline = 0;
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
      await this.dispatch(command);
      this.pendingCommands -= 1;
    });
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
      this.node.metrics.error(wire.code);
      this.sendText(encodeError(id, wire));
      if (this.violations >= this.limits.maxViolations) this.closeAfterReply(CloseCode.PROTOCOL_ERROR);
    }
  }

  /** Runs one command; returns the encoded reply (some commands encode their own). */
  private async run(method: Method, params: Params<Method>, id: number): Promise<string | undefined> {
    const node = this.node;
    switch (method) {
      case 'connect':
        return encodeReply(id, await this.connect(params as Params<'connect'>));
      case 'refresh': {
        const identity = await node.verifier.verify((params as Params<'refresh'>).token);
        if (identity.user !== this.user) throw new HubError(101, 'token names another user');
        this.identity = identity;
        return encodeReply(id, identity.expires !== undefined ? { expires: identity.expires } : {});
      }
      case 'subscribe':
        return node.subscribe(this, params as Params<'subscribe'>, id);
      case 'unsubscribe':
        await node.unsubscribe(this, (params as Params<'unsubscribe'>).channel);
        return encodeReply(id, {});
      case 'publish':
        return encodeReply(id, await node.publishFromClient(this, params as Params<'publish'>));
      case 'history':
        return node.history(this, params as Params<'history'>, id);
      case 'presence': {
        const clients = await node.presence(this, (params as Params<'presence'>).channel);
        return encodeReply(id, { clients, users: presenceUsers(clients) });
      }
      case 'typing':
        await node.typing(this, params as Params<'typing'>);
        return encodeReply(id, {});
      case 'markRead':
        return encodeReply(id, await node.markRead(this, params as Params<'markRead'>));
      case 'readState':
        return encodeReply(id, await node.readState(this, (params as Params<'readState'>).channel));
      case 'readers':
        return encodeReply(id, { readers: await node.readers(this, (params as Params<'readers'>).channel) });
      case 'setStatus':
        return encodeReply(id, await node.setStatus(this, (params as Params<'setStatus'>).status));
      case 'statuses':
        return encodeReply(id, { users: await node.statuses((params as Params<'statuses'>).users) });
      case 'rpc': {
        const p = params as Params<'rpc'>;
        return encodeReply(id, { data: await node.callRpc(this, p.method, p.data) });
      }
      case 'ping':
        return encodeReply(id, {});
    }
  }

  private async connect(params: Params<'connect'>): Promise<Record<string, unknown>> {
    if (this.state !== 'connecting') throw new HubError(113);
    let identity = this.handshake.identity;
    if (params.token !== undefined || !identity) {
      try {
        identity = await this.node.verifier.verify(params.token);
      } catch (err) {
        // A refused token ends the session: the client must not retry it unchanged.
        this.closeAfterReply(err instanceof HubError && err.code === 109 ? CloseCode.TOKEN_EXPIRED : CloseCode.UNAUTHORIZED);
        throw err;
      }
    }
    if (this.state !== 'connecting') throw new HubError(113);
    try {
      await this.establish(identity);
    } catch (err) {
      // Refused by a limit or the onConnect hook: the session ends after the error reply.
      if (!this.closed && this.pendingClose === undefined) this.closeAfterReply(CloseCode.UNAUTHORIZED);
      throw err;
    }
    const result: Record<string, unknown> = {
      client: this.id,
      user: identity.user,
      ping: Math.round(this.limits.pingIntervalMs / 1000),
      pong: Math.round(this.limits.pongTimeoutMs / 1000),
      version: PROTOCOL_VERSION,
      limits: {
        commandRate: this.limits.commandRate,
        maxMessageBytes: this.limits.maxMessageBytes,
        maxChannels: this.limits.maxChannelsPerConnection,
        historyMaxLimit: this.limits.historyMaxLimit,
        typingExpireMs: this.limits.typingExpireMs,
      },
    };
    if (identity.expires !== undefined) result.expires = identity.expires;
    return result;
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

  /** Sends a publication of a subscription (`frame` is its push, encoded once for everyone). */
  deliver(_sub: Subscription, _pub: Publication, frame: Buffer): void {
    this.enqueue(frame);
  }

  /** Sends a server push other than a publication (join, leave, unsubscribe). */
  push(_kind: PushKind, frame: Buffer): void {
    this.enqueue(frame);
  }

  /** Heartbeat: connect deadline, pong deadline, token expiry, then a ping when due. */
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
      this.close(CloseCode.TOKEN_EXPIRED);
      return;
    }
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

  /** Queues one message (already encoded once for all its receivers) for the next write. */
  enqueue(frame: Buffer): void {
    if (this.state === 'closed') return;
    this.queue.push(frame);
    if (this.queue.bytes > this.limits.maxQueueBytes) {
      this.close(CloseCode.SLOW_CONSUMER);
      return;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.node.scheduler.schedule(this);
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
    if (this.transport.bufferedAmount > this.limits.maxQueueBytes) this.close(CloseCode.SLOW_CONSUMER);
    else if (this.pendingClose !== undefined) this.close(this.pendingClose);
  }

  /** Closes once the reply being prepared (queued in this turn or the next) has been written. */
  closeAfterReply(code: CloseCodeValue): void {
    this.pendingClose = code;
    setImmediate(() => {
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        this.node.scheduler.schedule(this);
      }
    });
  }

  // ---- closing ---------------------------------------------------------------------------

  /**
   * Tells the client why (a `disconnect` push), then closes. A slow consumer's socket cannot
   * take even that, so it is dropped at once.
   */
  close(code: CloseCodeValue, reason: string = CLOSE_REASONS[code]): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.queue.clear();
    if (code === CloseCode.SLOW_CONSUMER) {
      this.transport.terminate();
    } else {
      this.transport.send(this.encodeDisconnect(code, reason));
      this.transport.close(code, reason);
    }
    this.node.release(this, code);
  }

  protected encodeDisconnect(code: CloseCodeValue, reason: string): Buffer {
    return Buffer.from(encodeDisconnectPush(code, reason, shouldReconnect(code)));
  }

  /** The transport went away (client closed, network error). */
  transportClosed(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.queue.clear();
    this.node.release(this, CloseCode.GOING_AWAY);
  }
}
