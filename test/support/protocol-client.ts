import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';

/** One decoded line from the server: a reply, a push, or an error without id. */
export interface ServerMessage {
  id?: number;
  result?: any;
  error?: { code: number; message: string; temporary?: boolean };
  push?: string;
  channel?: string;
  offset?: number;
  data?: any;
  info?: any;
  code?: number;
  reason?: string;
  [key: string]: any;
}

/** A reply error, as an exception: `code` is the protocol error code. */
export class CallError extends Error {
  readonly code: number;
  readonly temporary: boolean | undefined;
  constructor(error: { code: number; message: string; temporary?: boolean }) {
    super(`error ${error.code}: ${error.message}`);
    this.name = 'CallError';
    this.code = error.code;
    this.temporary = error.temporary;
  }
}

/** The handshake was refused with an HTTP status instead of an upgrade. */
export class HandshakeError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`handshake refused: HTTP ${status} ${body}`);
    this.name = 'HandshakeError';
  }
}

export interface OpenOptions {
  /** Extra handshake headers (e.g. Authorization). */
  headers?: Record<string, string>;
  /** Origin header; none is sent when omitted. */
  origin?: string;
  /** Answer `{"push":"ping"}` with `{"method":"pong"}` (default true). */
  autoPong?: boolean;
  /** How long to wait for the upgrade. */
  timeoutMs?: number;
  /**
   * Keep `pub` pushes in `messages` (default true). With false they are only counted
   * (`pubCount`), so a firehose test does not measure the test client's own memory.
   */
  retainPubs?: boolean;
  /** Local address to connect from (e.g. 127.0.0.2, to look like another IP on loopback). */
  localAddress?: string;
  /** WebSocket subprotocols to offer (e.g. `switchboard.v2.json`); none by default. */
  protocols?: string | string[];
}

export interface CloseInfo {
  code: number;
  reason: string;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * A raw wire-protocol v1 client over a real `ws` WebSocket: splits frames on "\n", routes
 * replies by id, collects everything else, answers pings. Good for both well-behaved and
 * hostile traffic.
 */
export class ProtocolClient {
  /** Every decoded line, in arrival order. */
  readonly messages: ServerMessage[] = [];
  /** Lines that were not valid JSON (should never happen). */
  readonly undecodable: string[] = [];
  /** Count of WebSocket frames received. */
  frames = 0;
  autoPong: boolean;
  readonly retainPubs: boolean;
  private readonly pubCounts = new Map<string, number>();
  readonly closed: Promise<CloseInfo>;
  /** Set once the socket closed. */
  closeInfo: CloseInfo | undefined;

  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: ServerMessage): void; reject(e: Error): void }>();
  private readonly listeners = new Set<() => void>();

  private constructor(
    readonly ws: WebSocket,
    options: OpenOptions,
  ) {
    this.autoPong = options.autoPong ?? true;
    this.retainPubs = options.retainPubs ?? true;
    this.closed = new Promise<CloseInfo>((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        this.closeInfo = { code, reason: reason.toString() };
        for (const p of this.pending.values()) p.reject(new Error(`connection closed (${code}) before the reply`));
        this.pending.clear();
        this.notify();
        resolve(this.closeInfo);
      });
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => this.onFrame(data, isBinary));
  }

  /** Opens a WebSocket; rejects with HandshakeError when the server answers with an HTTP status. */
  static open(url: string, options: OpenOptions = {}): Promise<ProtocolClient> {
    const ws = new WebSocket(url, options.protocols ?? [], {
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.origin !== undefined ? { origin: options.origin } : {}),
      perMessageDeflate: false,
      handshakeTimeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    const client = new ProtocolClient(ws, options);
    return new Promise((resolve, reject) => {
      let settled = false;
      ws.on('unexpected-response', (req, res: IncomingMessage) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        const done = (): void => {
          if (settled) return;
          settled = true;
          req.destroy();
          reject(new HandshakeError(res.statusCode ?? 0, body));
        };
        res.on('end', done);
        res.on('close', done);
        res.on('error', done);
      });
      ws.on('error', (err) => {
        if (settled) return;
        settled = true;
        reject(err);
      });
      ws.on('open', () => {
        if (settled) return;
        settled = true;
        resolve(client);
      });
    });
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  // ---- sending ------------------------------------------------------------------------

  /** Sends raw bytes or text as one frame (text frame unless binary). `fin: false` sends a fragment. */
  sendRaw(data: string | Buffer, options: { binary?: boolean; fin?: boolean } = {}): void {
    this.ws.send(data, { binary: options.binary ?? false, fin: options.fin ?? true, compress: false });
  }

  /** Sends objects as one frame, one JSON per line. */
  sendLines(...objects: unknown[]): void {
    this.sendRaw(objects.map((o) => JSON.stringify(o)).join('\n'));
  }

  /** A fresh command id. */
  id(): number {
    return this.nextId++;
  }

  /** Sends a command and resolves with the whole reply line (result or error). */
  request(method: string, params?: unknown, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ServerMessage> {
    const id = this.id();
    const cmd: Record<string, unknown> = { id, method };
    if (params !== undefined) cmd.params = params;
    return this.requestRaw(id, JSON.stringify(cmd), timeoutMs);
  }

  /** Sends an already-encoded command line with the given id and waits for its reply. */
  requestRaw(id: number, line: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ServerMessage> {
    const reply = this.expectReply(id, timeoutMs);
    this.sendRaw(line);
    return reply;
  }

  /** Waits for the reply with `id` (send the command yourself). */
  expectReply(id: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ServerMessage> {
    if (this.closeInfo) return Promise.reject(new Error(`connection closed (${this.closeInfo.code})`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no reply to command ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  /** Sends a command; resolves with `result` or rejects with a CallError carrying `code`. */
  async call(method: string, params?: unknown, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<any> {
    const reply = await this.request(method, params, timeoutMs);
    if (reply.error) throw new CallError(reply.error);
    return reply.result;
  }

  /** Calls and returns the error code (fails if the call succeeded). */
  async errorCode(method: string, params?: unknown): Promise<number> {
    const reply = await this.request(method, params);
    if (!reply.error) throw new Error(`expected an error from ${method}, got result ${JSON.stringify(reply.result)}`);
    return reply.error.code;
  }

  connect(token?: string, extra: Record<string, unknown> = {}): Promise<any> {
    return this.call('connect', token === undefined ? extra : { token, ...extra });
  }

  subscribe(channel: string, since?: { offset: number; epoch: string }): Promise<any> {
    return this.call('subscribe', since ? { channel, since } : { channel });
  }

  publish(channel: string, data: unknown, idempotencyKey?: string): Promise<{ offset: number; epoch: string }> {
    return this.call('publish', idempotencyKey === undefined ? { channel, data } : { channel, data, idempotencyKey });
  }

  // ---- receiving ----------------------------------------------------------------------

  /** Pushes received so far (optionally of one kind). */
  pushes(kind?: string): ServerMessage[] {
    return this.messages.filter((m) => m.push !== undefined && (kind === undefined || m.push === kind));
  }

  /** `pub` pushes received so far, optionally for one channel. */
  pubs(channel?: string): ServerMessage[] {
    return this.messages.filter((m) => m.push === 'pub' && (channel === undefined || m.channel === channel));
  }

  /** How many `pub` pushes arrived for `channel` (counted even when not retained). */
  pubCount(channel: string): number {
    return this.pubCounts.get(channel) ?? 0;
  }

  /** Resolves once `pubCount(channel) >= n`. */
  waitForPubCount(channel: string, n: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<number> {
    return this.until(
      () => (this.pubCount(channel) >= n ? this.pubCount(channel) : undefined),
      timeoutMs,
      `${n} publications on ${channel}`,
      () => `got ${this.pubCount(channel)}`,
    );
  }

  /** Error lines without an id (undecodable commands). */
  orphanErrors(): ServerMessage[] {
    return this.messages.filter((m) => m.error !== undefined && m.id === undefined);
  }

  /** Resolves with the first message (already received or future) matching `pred`. */
  waitFor(pred: (m: ServerMessage) => boolean, timeoutMs = DEFAULT_TIMEOUT_MS, what = 'a matching message'): Promise<ServerMessage> {
    return this.until(() => this.messages.find(pred), timeoutMs, what);
  }

  /** Resolves once at least `n` pushes match `pred`, with the first `n` of them. */
  waitForPushes(n: number, pred: (m: ServerMessage) => boolean = () => true, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ServerMessage[]> {
    return this.until(
      () => {
        const got = this.messages.filter((m) => m.push !== undefined && pred(m));
        return got.length >= n ? got.slice(0, n) : undefined;
      },
      timeoutMs,
      `${n} pushes`,
      () => `got ${this.messages.filter((m) => m.push !== undefined && pred(m)).length}`,
    );
  }

  /** Resolves when the socket closes, or rejects after `timeoutMs`. */
  waitForClose(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<CloseInfo> {
    return this.until(() => this.closeInfo, timeoutMs, 'the connection to close');
  }

  private until<T>(check: () => T | undefined, timeoutMs: number, what: string, detail?: () => string): Promise<T> {
    const now = check();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const listener = (): void => {
        const v = check();
        if (v === undefined) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(v);
      };
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail ? ` (${detail()})` : ''}`));
      }, timeoutMs);
      this.listeners.add(listener);
    });
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  private onFrame(data: Buffer, _isBinary: boolean): void {
    this.frames += 1;
    for (const line of data.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      let msg: ServerMessage;
      try {
        msg = JSON.parse(line) as ServerMessage;
      } catch {
        this.undecodable.push(line);
        continue;
      }
      if (msg.push === 'pub') {
        const ch = String(msg.channel);
        this.pubCounts.set(ch, (this.pubCounts.get(ch) ?? 0) + 1);
        if (!this.retainPubs) continue;
      }
      this.messages.push(msg);
      if (typeof msg.id === 'number' && msg.push === undefined) {
        const p = this.pending.get(msg.id);
        if (p) {
          this.pending.delete(msg.id);
          p.resolve(msg);
        }
      } else if (msg.push === 'ping' && this.autoPong && this.isOpen) {
        this.ws.send('{"method":"pong"}');
      }
    }
    this.notify();
  }

  // ---- flow control and closing -----------------------------------------------------

  /** Stops reading from the socket (the kernel buffers fill, then the server's queue grows). */
  pauseReading(): void {
    (this.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  }

  resumeReading(): void {
    (this.ws as unknown as { _socket: { resume(): void } })._socket.resume();
  }

  close(code = 1000): Promise<CloseInfo> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code);
    return this.closed;
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** Tries a WebSocket handshake; resolves 101 on upgrade (then closes), or the refusal's HTTP status. */
export async function handshakeStatus(url: string, options: OpenOptions = {}): Promise<number> {
  try {
    const c = await ProtocolClient.open(url, options);
    c.terminate();
    return 101;
  } catch (err) {
    if (err instanceof HandshakeError) return err.status;
    throw err;
  }
}
