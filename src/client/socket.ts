import { Backoff, type BackoffOptions } from './backoff.js';
import type { Inbound } from './codec.js';
import { wireCodec, type CodecName, type Encoded, type ProtocolVersion, type WireCodec } from './wire-codec.js';
import {
  ClientErrorCode,
  CLOSE_NAMES,
  CloseCode,
  ConnectionState,
  ServerErrorCode,
  shouldReconnect,
  type ConnectionStateValue,
} from './constants.js';
import { ConnectionToken } from './connection-token.js';
import { ClientError } from './errors.js';
import { ReplyTable, type ReplyCallback } from './reply-table.js';
import type { WebSocketConstructor } from './types.js';
import { resolveWebSocket, type WebSocketLike } from './websocket.js';

export type { ReplyCallback };

export interface SocketOptions {
  urls: readonly string[];
  token?: string;
  getToken?: () => Promise<string>;
  name?: string;
  backoff: BackoffOptions;
  random?: () => number;
  timeoutMs: number;
  maxFrameBytes: number;
  /** Largest command; a longer one is refused here rather than have the server close with 1009. */
  maxMessageBytes: number;
  WebSocket?: WebSocketConstructor;
  /** The wire codec (default JSON). */
  codec?: CodecName;
  /** The protocol version to ask for (default 2). */
  protocolVersion?: ProtocolVersion;
}

/** The connect reply, plus the URL it came through. */
export interface Session {
  client: string;
  user: string;
  url: string;
  expires?: number;
  ping: number;
  pong: number;
  /** The server's per-connection command rate, from the connect reply's `limits`. */
  commandRate?: { perSecond: number; burst: number };
  /** Server-side subscriptions of the connect reply (`subs`, `subsRefused`), as sent. */
  subs?: unknown;
  subsRefused?: unknown;
}

/** What the socket tells its owner (the SwitchboardClient). Called synchronously, in wire order. */
export interface SocketEvents {
  /** The connect reply arrived: resubscribe and flush now, before anything else is sent. */
  connected(session: Session): void;
  /** Extra params of the connect command (the server-side subscriptions to recover). */
  connectParams?(): Record<string, unknown>;
  /** The transport is gone; in-flight commands were just rejected. */
  transportLost(): void;
  stateChange(state: ConnectionStateValue, previous: ConnectionStateValue, reason: string, code?: number): void;
  push(message: Inbound): void;
  error(err: ClientError): void;
}

/**
 * One logical connection to the hub over a succession of WebSockets: opens them in turn over the
 * URLs (round robin), sends `connect`, matches replies to commands, answers pings, watches for
 * silence, refreshes the token, and reconnects with backoff unless the close was terminal.
 */
export class Socket {
  /** The true state; `reported` is the last one announced (they differ only inside a transition). */
  state: ConnectionStateValue = ConnectionState.Disconnected;
  private reported: ConnectionStateValue = ConnectionState.Disconnected;
  /** Increases with every transport opened; replies and timers of older ones are ignored. */
  generation = 0;
  session: Session | undefined;

  private readonly backoff: Backoff;
  private ws: WebSocketLike | undefined;
  private wsCtor: WebSocketConstructor | undefined;
  private wantConnected = false;
  private urlIndex = 0;
  private readonly token: ConnectionToken;
  private readonly replies = new ReplyTable();
  private outbox: Encoded[] = [];
  private readonly codec: WireCodec;
  private readonly pong: Encoded;
  private flushQueued = false;
  private lastSeen = 0;
  private silenceLimitMs = 0;
  private disconnectPush: { code: number; reason: string } | undefined;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private watchdogTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly options: SocketOptions,
    private readonly events: SocketEvents,
  ) {
    this.backoff = new Backoff(options.backoff, options.random);
    this.codec = wireCodec(options.codec, options.protocolVersion);
    this.pong = this.codec.encode({ method: 'pong' });
    this.token = new ConnectionToken(options.token, options.getToken, options.timeoutMs, {
      isCurrent: (generation) => generation === this.generation,
      isConnected: () => this.connected,
      request: (method, params, timeoutMs) => this.request(method, params, timeoutMs),
      refreshed: (expires) => {
        if (!this.session) return;
        if (expires !== undefined) this.session.expires = expires;
        else delete this.session.expires;
      },
      error: (err) => this.events.error(err),
    });
  }

  get connected(): boolean {
    return this.state === ConnectionState.Connected;
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  connect(): void {
    if (this.state !== ConnectionState.Disconnected) return;
    this.wantConnected = true;
    this.backoff.reset();
    this.setState(ConnectionState.Connecting, 'connect() called');
    void this.open();
  }

  disconnect(reason = 'disconnect() called'): void {
    this.wantConnected = false;
    clearTimeout(this.reconnectTimer);
    const hadTransport = this.ws !== undefined;
    this.generation += 1;
    if (hadTransport) this.dropTransport(CloseCode.NORMAL, 'client disconnect');
    this.setState(ConnectionState.Disconnected, reason, CloseCode.NORMAL);
  }

  /** Opens the next transport. */
  private async open(): Promise<void> {
    const generation = ++this.generation;
    const stale = (): boolean => generation !== this.generation || !this.wantConnected;
    let token: string | undefined;
    try {
      token = await this.token.current();
    } catch (err) {
      if (stale()) return;
      this.events.error(err as ClientError);
      this.scheduleReconnect('could not get a token', undefined);
      return;
    }
    let Ctor: WebSocketConstructor;
    try {
      Ctor = this.wsCtor ??= await resolveWebSocket(this.options.WebSocket);
    } catch (err) {
      if (stale()) return;
      this.terminal(`no WebSocket implementation: ${(err as Error).message}`, undefined);
      return;
    }
    if (stale()) return;
    const url = this.options.urls[this.urlIndex % this.options.urls.length]!;
    this.urlIndex += 1;
    let ws: WebSocketLike;
    try {
      const protocols = this.codec.subprotocols;
      ws = (protocols === undefined ? new Ctor(url) : new Ctor(url, [...protocols])) as WebSocketLike;
      if (protocols !== undefined) ws.binaryType = 'arraybuffer';
    } catch (err) {
      this.events.error(new ClientError(ClientErrorCode.BAD_ARGUMENT, `cannot open ${url}: ${(err as Error).message}`, { cause: err }));
      this.scheduleReconnect(`cannot open ${url}`, undefined);
      return;
    }
    this.ws = ws;
    this.disconnectPush = undefined;
    const mine = (): boolean => this.ws === ws && generation === this.generation;
    ws.onopen = () => {
      if (mine()) this.sendConnect(url, token, generation);
    };
    ws.onmessage = (ev) => {
      if (mine()) this.onFrame(ev.data);
    };
    ws.onerror = () => {
      // A close event follows; it carries the code.
    };
    ws.onclose = (ev) => {
      if (mine()) this.transportClosed(ev.code, ev.reason);
    };
    // Covers the TCP connect, the handshake and the connect reply.
    this.connectTimer = setTimeout(() => {
      if (mine()) this.lose(`no connect reply from ${url} within ${this.options.timeoutMs} ms`, undefined);
    }, this.options.timeoutMs);
  }

  private sendConnect(url: string, token: string | undefined, generation: number): void {
    const params: Record<string, unknown> = { ...this.events.connectParams?.() };
    if (token !== undefined) params.token = token;
    if (this.options.name !== undefined) params.name = this.options.name;
    this.send('connect', params, (err, result) => {
      if (generation !== this.generation) return;
      clearTimeout(this.connectTimer);
      if (err) this.connectRefused(err);
      else this.established(url, result as Record<string, unknown>);
    });
  }

  private established(url: string, r: Record<string, unknown>): void {
    const session: Session = {
      client: String(r.client ?? ''),
      user: String(r.user ?? ''),
      url,
      ping: typeof r.ping === 'number' ? r.ping : 0,
      pong: typeof r.pong === 'number' ? r.pong : 0,
    };
    if (typeof r.expires === 'number') session.expires = r.expires;
    if (r.subs !== undefined) session.subs = r.subs;
    if (r.subsRefused !== undefined) session.subsRefused = r.subsRefused;
    const rate = (r.limits as { commandRate?: { perSecond?: unknown; burst?: unknown } } | undefined)?.commandRate;
    if (rate && typeof rate.perSecond === 'number' && typeof rate.burst === 'number' && rate.perSecond > 0 && rate.burst >= 1) {
      session.commandRate = { perSecond: rate.perSecond, burst: rate.burst };
    }
    this.session = session;
    this.backoff.reset();
    this.state = ConnectionState.Connected;
    this.silenceLimitMs = session.ping > 0 ? (session.ping + session.pong) * 1000 : 0;
    this.lastSeen = Date.now();
    this.armWatchdog();
    if (session.expires !== undefined) this.token.scheduleRefresh(session.expires, this.generation);
    // The owner resubscribes and flushes first; the state event (and whatever listeners send
    // from it) comes after.
    this.events.connected(session);
    if (this.state === ConnectionState.Connected) this.setState(ConnectionState.Connected, `connected to ${url}`);
  }

  /** The connect command was refused. The server may or may not close; we close either way. */
  private connectRefused(err: ClientError): void {
    this.events.error(err);
    if (err.code === ServerErrorCode.TOKEN_EXPIRED && this.options.getToken) {
      this.token.expired();
      this.lose('token expired: getting a new one', CloseCode.TOKEN_EXPIRED);
    } else if (err.code === ServerErrorCode.LIMIT_EXCEEDED || err.temporary) {
      this.lose(`connect refused: ${err.message}`, undefined);
    } else {
      this.dropTransport(CloseCode.NORMAL, 'connect refused');
      this.terminal(`connect refused: ${err.message}`, err.code === ServerErrorCode.TOKEN_EXPIRED ? CloseCode.TOKEN_EXPIRED : undefined);
    }
  }

  // ---- commands ----------------------------------------------------------------------------

  /**
   * Sends a command on the current transport; `callback` runs synchronously when its reply is
   * decoded (so a subscribe reply is handled before the pushes that follow it in the frame).
   * Without a transport, or when it is lost before the reply, the callback gets DISCONNECTED.
   */
  send(method: string, params: unknown, callback: ReplyCallback, timeoutMs?: number): void {
    if (!this.ws) {
      callback(ClientError.notConnected(method), undefined);
      return;
    }
    const id = this.replies.nextId();
    const line = this.codec.encode({ id, method, params });
    const bytes = this.codec.byteLength(line);
    if (bytes > this.options.maxMessageBytes) {
      callback(
        new ClientError(
          ClientErrorCode.MESSAGE_TOO_BIG,
          `${method}: ${bytes} bytes is over maxMessageBytes (${this.options.maxMessageBytes}); the server would close the connection`,
        ),
        undefined,
      );
      return;
    }
    this.replies.expect(id, method, callback, timeoutMs);
    this.enqueue(line);
  }

  /** `send` as a promise, for commands that may be made only while connected. */
  request(method: string, params: unknown, timeoutMs?: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (!this.connected) {
        reject(ClientError.notConnected(method));
        return;
      }
      this.send(method, params, (err, result) => (err ? reject(err) : resolve(result)), timeoutMs);
    });
  }

  /** Lines sent in one tick go out together, in frames of at most maxFrameBytes. */
  /** Sends a command that has no reply (a client event), in order with the others. */
  sendWithoutReply(method: string, params: unknown): boolean {
    if (!this.ws || !this.connected) return false;
    const message = this.codec.encode({ method, params });
    if (this.codec.byteLength(message) > this.options.maxMessageBytes) return false;
    this.enqueue(message);
    return true;
  }

  private enqueue(line: Encoded): void {
    this.outbox.push(line);
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  private flush(): void {
    this.flushQueued = false;
    const lines = this.outbox;
    this.outbox = [];
    const ws = this.ws;
    if (!ws || lines.length === 0) return;
    try {
      for (const frame of this.codec.join(lines, this.options.maxFrameBytes)) ws.send(frame);
    } catch (err) {
      // Sending on a socket that is closing: the close event follows and rejects the commands.
      this.events.error(new ClientError(ClientErrorCode.DISCONNECTED, `send failed: ${(err as Error).message}`, { temporary: true }));
    }
  }

  // ---- inbound -----------------------------------------------------------------------------

  private onFrame(data: unknown): void {
    this.lastSeen = Date.now();
    const messages = this.codec.decode(data, (what) => this.events.error(new ClientError(ClientErrorCode.PROTOCOL, what)));
    const generation = this.generation;
    for (const msg of messages) {
      if (generation !== this.generation) return; // a handler closed the transport
      this.onMessage(msg);
    }
  }

  private onMessage(msg: Inbound): void {
    if (typeof msg.id === 'number') {
      this.replies.settle(msg.id, msg);
      return;
    }
    switch (msg.push) {
      case 'ping':
        this.enqueue(this.pong);
        return;
      case 'disconnect':
        this.disconnectPush = { code: Number(msg.code), reason: String(msg.reason ?? '') };
        return;
      case undefined:
        if (msg.error !== undefined) this.events.error(ClientError.fromWire(msg.error, 'server'));
        return;
      default:
        this.events.push(msg);
    }
  }

  // ---- heartbeat ---------------------------------------------------------------------------

  /** Server silence for ping + pong seconds means the connection is dead. */
  private armWatchdog(): void {
    clearTimeout(this.watchdogTimer);
    if (this.silenceLimitMs <= 0) return;
    const generation = this.generation;
    const check = (): void => {
      if (generation !== this.generation) return;
      const idle = Date.now() - this.lastSeen;
      if (idle >= this.silenceLimitMs) {
        this.lose(`no ping from the server for ${Math.round(idle / 1000)} s`, CloseCode.NO_PONG);
      } else {
        this.watchdogTimer = setTimeout(check, this.silenceLimitMs - idle);
      }
    };
    this.watchdogTimer = setTimeout(check, this.silenceLimitMs);
  }

  // ---- losing the transport ----------------------------------------------------------------

  private transportClosed(code: number, reason: string): void {
    // A dropped connection reports 1005/1006; the disconnect push, if it came, knows better.
    const push = this.disconnectPush;
    const effective = (code === 1005 || code === 1006) && push ? push.code : code;
    const why = push?.reason || reason;
    this.dropTransport(undefined, '');
    const name = CLOSE_NAMES[effective];
    this.afterLoss(`connection closed (${effective}${name ? ` ${name}` : ''}${why && why !== name ? `: ${why}` : ''})`, effective);
  }

  /** Closes the transport from this side and reconnects (unless `code` says otherwise). */
  private lose(reason: string, code: number | undefined): void {
    this.dropTransport(CloseCode.NORMAL, 'reconnecting');
    this.afterLoss(reason, code);
  }

  private afterLoss(reason: string, code: number | undefined): void {
    if (!this.wantConnected) {
      this.setState(ConnectionState.Disconnected, reason, code);
      return;
    }
    if (code === CloseCode.TOKEN_EXPIRED) {
      if (!this.options.getToken) {
        this.terminal(`${reason}; no getToken() to get a new token`, code);
        return;
      }
      this.token.expired();
    } else if (code !== undefined && !shouldReconnect(code)) {
      this.terminal(reason, code);
      return;
    }
    this.scheduleReconnect(reason, code);
  }

  /**
   * Forgets the current transport: stops its timers, rejects its pending commands with a
   * temporary DISCONNECTED error and tells the owner. `closeCode` closes the WebSocket too.
   */
  private dropTransport(closeCode: number | undefined, closeReason: string): void {
    const ws = this.ws;
    if (!ws) return;
    this.ws = undefined;
    this.session = undefined;
    this.generation += 1;
    clearTimeout(this.connectTimer);
    clearTimeout(this.watchdogTimer);
    this.token.cancelRefresh();
    this.outbox = [];
    const noop = (): void => undefined;
    // Keep no-op handlers: `ws` throws on an 'error' event without a listener.
    ws.onopen = noop;
    ws.onmessage = noop;
    ws.onclose = noop;
    ws.onerror = noop;
    if (closeCode !== undefined) {
      try {
        if (typeof ws.terminate === 'function') ws.terminate();
        else ws.close(closeCode, closeReason);
      } catch {
        // already closed
      }
    }
    // Not connected any more; the caller announces what comes next (connecting or disconnected).
    if (this.state === ConnectionState.Connected) this.state = ConnectionState.Connecting;
    this.replies.disconnectAll();
    this.events.transportLost();
  }

  private scheduleReconnect(reason: string, code: number | undefined): void {
    clearTimeout(this.reconnectTimer);
    const delay = this.backoff.next();
    this.setState(ConnectionState.Connecting, reason, code);
    this.reconnectTimer = setTimeout(() => {
      if (this.wantConnected && this.state === ConnectionState.Connecting && !this.ws) void this.open();
    }, delay);
  }

  private terminal(reason: string, code: number | undefined): void {
    this.wantConnected = false;
    clearTimeout(this.reconnectTimer);
    this.setState(ConnectionState.Disconnected, reason, code);
  }

  private setState(state: ConnectionStateValue, reason: string, code?: number): void {
    this.state = state;
    const previous = this.reported;
    if (previous === state) return;
    this.reported = state;
    this.events.stateChange(state, previous, reason, code);
  }
}
