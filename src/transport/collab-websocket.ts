import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Identity } from '../auth/verifier.js';
import { documentAccess, type CanEdit } from '../collab/access.js';
import type { DocPeer, HostedDocument } from '../collab/document.js';
import type { DocumentHost } from '../collab/host.js';
import { encodeDenied } from '../collab/messages.js';
import type { HubHooks } from '../hub/hooks.js';
import type { Node } from '../hub/node.js';
import { CloseCode } from '../protocol/close-codes.js';
import { ERRORS, HubError } from '../protocol/errors.js';
import { Admission, requestToken } from './admission.js';
import { reject } from './websocket.js';

class SocketPeer implements DocPeer {
  private corked = false;

  constructor(
    private readonly ws: WebSocket,
    readonly user: string,
    readonly client: string,
    readonly readOnly: boolean,
    private readonly maxQueueBytes: number,
  ) {}

  send(message: Uint8Array): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    // A reader that does not keep up is dropped; it syncs again (state vectors) when it comes back.
    if (this.ws.bufferedAmount > this.maxQueueBytes) {
      this.ws.terminate();
      return;
    }
    this.cork();
    this.ws.send(message, { binary: true });
  }

  /**
   * Holds the socket's writes until the current tick's work is done: the messages sent to this
   * socket meanwhile (a group commit's updates, awareness) leave in one write, not one syscall each.
   */
  private cork(): void {
    if (this.corked) return;
    const socket = (this.ws as unknown as { _socket?: { cork(): void; uncork(): void; destroyed: boolean } })._socket;
    if (!socket || socket.destroyed) return;
    this.corked = true;
    socket.cork();
    process.nextTick(() => {
      this.corked = false;
      socket.uncork();
    });
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), 2_000).unref();
  }
}

/**
 * The y-websocket-compatible endpoint: `ws://HOST:PORT<collab.path>/<channel>?token=JWT`. The
 * same admission as the main endpoint (shutdown, origin and Host, connection caps, per-IP rate),
 * then the token, then the document's permissions — all before the upgrade. Each socket is one
 * peer of one document.
 */
export class CollabAcceptor {
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<WebSocket>();

  constructor(
    private readonly node: Node,
    private readonly admission: Admission,
    private readonly host: DocumentHost,
    private readonly hooks: { hub: HubHooks; canEdit?: CanEdit },
    private readonly logger: Logger,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: node.options.collab.maxUpdateBytes + 64,
      perMessageDeflate: false,
      clientTracking: false,
    });
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, name: string): void {
    socket.on('error', () => socket.destroy());
    const refusal = this.admission.refusal(req);
    if (refusal) return reject(socket, refusal.status, `${refusal.code} ${refusal.message}`);
    if (this.sockets.size >= this.node.options.limits.maxConnections) return reject(socket, 503, '114 connection limit reached');
    const token = requestToken(req);
    const identity: Promise<Identity> =
      token !== undefined
        ? this.node.verifier.verify(token)
        : this.node.options.auth.allowAnonymous
          ? Promise.resolve({ user: '', channels: [] })
          : Promise.reject(new HubError(101, 'token required: add ?token=JWT'));
    const client = randomUUID();
    identity
      .then((id) =>
        documentAccess(this.node.resolver, name, id, client, req.headers, { ...this.hooks, timeoutMs: this.node.options.limits.hookTimeoutMs }),
      )
      .then(
        (access) => this.upgrade(req, socket, head, access.name, access.ctx.user, client, access.readOnly, access.expires),
        (err: unknown) => {
          const e = err instanceof HubError ? err : new HubError(100, 'internal server error');
          if (!(err instanceof HubError)) this.logger.error({ err }, 'collab admission failed');
          reject(socket, ERRORS[e.code as keyof typeof ERRORS]?.httpStatus ?? 400, `${e.code} ${e.message}`);
        },
      );
  }

  private upgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    name: string,
    user: string,
    client: string,
    readOnly: boolean,
    expires: number | undefined,
  ): void {
    if (socket.destroyed || !socket.writable) return;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.sockets.add(ws);
      // The token's exp ends the socket (4003); the provider reconnects with a fresh token.
      const expiry =
        expires !== undefined ? setTimeout(() => ws.close(CloseCode.TOKEN_EXPIRED, 'token expired'), Math.max(0, expires * 1000 - Date.now())) : undefined;
      expiry?.unref();
      const peer = new SocketPeer(ws, user, client, readOnly, this.node.options.limits.maxQueueBytes);
      let doc: HostedDocument | undefined;
      let closed = false;
      const early: Uint8Array[] = [];
      const receive = (data: Uint8Array): void => {
        let handled: Promise<unknown>;
        try {
          handled = doc!.receive(peer, data);
        } catch (err) {
          this.logger.debug({ err, document: name }, 'malformed document message');
          ws.close(1003, '107 malformed message');
          return;
        }
        // A refused update (read-only, too large, not Yjs) is told the y-websocket way: a
        // permission-denied message with our code. A store failure has closed the socket already.
        handled.catch((err: unknown) => {
          if (err instanceof HubError && (err.code === 120 || err.code === 121 || err.code === 107)) peer.send(encodeDenied(err.code, err.message));
        });
      };
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary) {
          ws.close(1003, '107 binary messages only');
          return;
        }
        const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
        if (doc) receive(bytes);
        else early.push(bytes);
      });
      ws.on('close', () => {
        clearTimeout(expiry);
        closed = true;
        this.sockets.delete(ws);
        if (doc) this.host.leave(doc, peer);
      });
      ws.on('error', (err) => this.logger.debug({ err }, 'collab websocket error'));
      this.host.join(name, peer).then(
        (joined) => {
          if (closed) {
            this.host.leave(joined, peer);
            return;
          }
          doc = joined;
          for (const m of early.splice(0)) receive(m);
        },
        (err: unknown) => {
          const e = err instanceof HubError ? err : new HubError(100, 'internal server error');
          // 1013 "try again later": the y-websocket client reconnects with its backoff.
          ws.close(1013, `${e.code} ${e.message}`.slice(0, 120));
        },
      );
    });
  }

  async drain(deadline: number): Promise<void> {
    for (const ws of this.sockets) ws.close(1001, 'server shutting down');
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
    this.wss.close();
  }
}
