import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Identity } from '../auth/verifier.js';
import { Connection } from '../connection/connection.js';
import type { FlushScheduler } from '../connection/outbound-queue.js';
import type { Node } from '../hub/node.js';
import { CloseCode } from '../protocol/close-codes.js';
import { HubError } from '../protocol/errors.js';
import { Admission, requestToken } from './admission.js';
import type { Transport } from '../connection/transport.js';
import { chooseSubprotocol, SUBPROTOCOL_REFUSAL, type WireChoice } from '../codec/codec.js';
import { ERRORS } from '../protocol/errors.js';

/** How long a close handshake may take before the socket is dropped. */
const CLOSE_GRACE_MS = 2_000;

class WebSocketTransport implements Transport {
  readonly kind = 'websocket' as const;

  constructor(
    private readonly ws: WebSocket,
    /** MessagePack connections get binary frames, JSON ones text frames. */
    private readonly binary: boolean,
  ) {}

  send(frame: Buffer): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(frame, { binary: this.binary });
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  terminate(): void {
    this.ws.terminate();
  }

  private drainWaiter: (() => void) | undefined;

  /** The socket's `drain` (ws keeps its net.Socket as `_socket`); one listener at a time. */
  onDrain(cb: () => void): void {
    const socket = (this.ws as unknown as { _socket?: Duplex })._socket;
    if (!socket || this.drainWaiter) return;
    this.drainWaiter = cb;
    socket.once('drain', () => {
      const waiter = this.drainWaiter;
      this.drainWaiter = undefined;
      waiter?.();
    });
  }
}

/**
 * Accepts WebSocket upgrades: origin check, connection caps, per-IP connection rate and an
 * optional handshake token — all before the upgrade — then hands each socket to a Connection.
 */
export class WebSocketAcceptor {
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<WebSocket>();

  constructor(
    private readonly node: Node,
    private readonly admission: Admission,
    private readonly scheduler: FlushScheduler,
    private readonly logger: Logger,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: node.options.limits.maxMessageBytes,
      perMessageDeflate: false,
      clientTracking: false,
      // The subprotocol was chosen (or the upgrade refused) in handleUpgrade.
      handleProtocols: (protocols) => chooseSubprotocol([...protocols].join(','))?.protocol ?? false,
    });
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const refusal = this.admission.refusal(req);
    if (refusal) {
      reject(socket, refusal.status, refusal.message);
      return;
    }
    const chosen = chooseSubprotocol(req.headers['sec-websocket-protocol']);
    if (!chosen) {
      reject(socket, ERRORS[125].httpStatus, SUBPROTOCOL_REFUSAL, 125);
      return;
    }
    const token = requestToken(req);
    if (token === undefined) {
      this.upgrade(req, socket, head, undefined, chosen);
      return;
    }
    this.node.verifier.verify(token).then(
      (identity) => this.upgrade(req, socket, head, identity, chosen),
      (err: unknown) => reject(socket, 401, err instanceof HubError ? err.message : 'unauthorized'),
    );
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, identity: Identity | undefined, wire: WireChoice): void {
    // The token check awaited: the client may have left meanwhile.
    if (socket.destroyed || !socket.writable) return;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.sockets.add(ws);
      const conn = new Connection(
        this.node,
        new WebSocketTransport(ws, wire.codec === 'msgpack'),
        {
          ip: req.socket.remoteAddress ?? '',
          headers: req.headers,
          codec: wire.codec,
          protocolVersion: wire.version,
          ...(identity ? { identity } : {}),
        },
        this.scheduler,
      );
      this.node.register(conn);
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        try {
          if (isBinary) conn.handleBinary(data);
          else conn.handleFrame(data.toString('utf8'));
        } catch (err) {
          // A bug in handling one frame must not take the process down: end this session only.
          this.logger.error({ err, client: conn.id }, 'frame handling failed');
          conn.close(CloseCode.INTERNAL);
        }
      });
      ws.on('close', () => {
        this.sockets.delete(ws);
        conn.transportClosed();
      });
      ws.on('error', (err) => this.logger.debug({ err, client: conn.id }, 'websocket error'));
    });
  }

  /** Waits for open sockets to finish closing until `deadline`, then drops the rest. */
  async drain(deadline: number): Promise<void> {
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
    this.wss.close();
  }
}

/** Answers an upgrade with an HTTP error and closes the socket (also used by the collab endpoint). */
export function reject(socket: Duplex, status: number, message: string, code?: number): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(code === undefined ? { error: message } : { error: message, code });
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};
