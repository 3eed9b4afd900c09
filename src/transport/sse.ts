import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Identity } from '../auth/verifier.js';
import type { ResolvedChannel } from '../channels/channels.js';
import type { FlushScheduler } from '../connection/outbound-queue.js';
import { SseConnection } from '../connection/sse-connection.js';
import type { Transport } from '../connection/transport.js';
import { sendError, sendJson } from '../http/respond.js';
import type { Node } from '../hub/node.js';
import { CloseCode } from '../protocol/close-codes.js';
import { HubError, toWireError, type WireError } from '../protocol/errors.js';
import { parseEventId } from '../protocol/sse-event-id.js';
import type { StreamPosition } from '../stream/types.js';
import { requestToken, type Admission } from './admission.js';

class SseTransport implements Transport {
  readonly kind = 'sse' as const;

  constructor(private readonly res: ServerResponse) {}

  send(frame: Buffer): void {
    if (!this.res.writableEnded && !this.res.destroyed) this.res.write(frame);
  }

  get bufferedAmount(): number {
    return this.res.writableLength;
  }

  close(): void {
    if (!this.res.writableEnded) this.res.end();
  }

  terminate(): void {
    this.res.destroy();
  }
}

/**
 * `GET /sse?channel=A&channel=B`: a Server-Sent Events stream of the publications of those
 * channels, with the same token and permission checks as WebSocket, and recovery through the
 * browser's Last-Event-ID. Subscribes through the Node's one subscribe path.
 */
export class SseAcceptor {
  constructor(
    private readonly node: Node,
    private readonly admission: Admission,
    private readonly scheduler: FlushScheduler,
    private readonly logger: Logger,
  ) {}

  /** `given`: an identity already established by the caller (the admin UI's live tail); no token is read then. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL, given?: Identity): Promise<void> {
    // The answer depends on the Origin whether or not it is allowed: caches must key on it.
    res.setHeader('Vary', 'Origin');
    const origin = this.admission.corsOrigin(req);
    if (origin !== undefined) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      if (this.node.options.sse.credentials) res.setHeader('Access-Control-Allow-Credentials', 'true');
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'Access-Control-Allow-Methods': 'GET',
        'Access-Control-Allow-Headers': 'Authorization, Last-Event-ID',
        'Access-Control-Max-Age': '600',
      });
      res.end();
      return;
    }
    if (req.method !== 'GET') {
      sendJson(res, 405, { error: { code: 107, message: 'use GET' } });
      return;
    }
    const refusal = this.admission.refusal(req);
    if (refusal) {
      sendJson(res, refusal.status, { error: { code: refusal.code, message: refusal.message } });
      return;
    }
    // Listen for the client leaving before the first await: one that leaves during the token
    // check or a hook must not stay behind as a connection.
    let conn: SseConnection | undefined;
    let gone = false;
    res.on('close', () => {
      gone = true;
      conn?.transportClosed();
    });
    try {
      const names = this.channels(url);
      conn = new SseConnection(
        this.node,
        new SseTransport(res),
        { ip: req.socket.remoteAddress ?? '', headers: req.headers, ...(given ? { identity: given } : {}) },
        this.scheduler,
        names,
      );
      // An identity given by the caller (the admin UI's live tail), else the token, or the
      // connect proxy with the request's cookies (docs/backend.md).
      const identity = given ?? (await this.node.identify(conn, requestToken(req, this.node.options.sse.cookieName)));
      if (gone) return;
      conn.identity = identity;
      // Server-side channels (connect proxy, JWT `subs`) join those the URL named.
      conn.addServerSide(identity.subscriptions ?? []);
      if (conn.channels.length === 0) throw new HubError(107, 'channel: at least one channel query parameter is required');
      // Permission failures of the URL's channels answer with an HTTP error before the stream
      // starts; a server-side channel refused is only reported (in `subscribed`).
      const channels: ResolvedChannel[] = [];
      const refused: Record<string, WireError> = {};
      for (const name of conn.channels) {
        try {
          channels.push(await this.node.commands.authorize(conn, name));
        } catch (err) {
          if (names.includes(name)) throw err;
          refused[name] = toWireError(err);
        }
        if (gone) return;
      }
      this.node.register(conn);
      await conn.establish(identity);
      if (gone || conn.closed) {
        conn.transportClosed();
        return;
      }
      await this.stream(req, res, conn, url, channels, refused);
    } catch (err) {
      if (!res.headersSent) {
        conn?.transportClosed();
        if (!gone) sendError(res, err);
      } else if (conn && !conn.closed) {
        // The stream failed after its headers: end it, so the browser reconnects and recovers.
        this.logger.warn({ err, client: conn.id }, 'sse stream failed');
        conn.close(CloseCode.INTERNAL);
      } else {
        res.end();
      }
    }
  }

  private async stream(
    req: IncomingMessage,
    res: ServerResponse,
    conn: SseConnection,
    url: URL,
    channels: ResolvedChannel[],
    refused: Record<string, WireError>,
  ): Promise<void> {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    req.socket.setNoDelay(true);
    req.socket.setTimeout(0);
    conn.enqueue(Buffer.from(`retry: ${this.node.options.sse.retryMs}\n\n`));

    const lastEventId = lastEventIdOf(req, url);
    const order = conn.channels;
    const since = lastEventId === undefined ? undefined : parseEventId(lastEventId, order.length);
    const positions: Record<string, StreamPosition> = {};
    // A Last-Event-ID that does not parse still means the client had a position: a
    // position no stream has, so every channel with history reports recovery-failed.
    const fromOf = (name: string): StreamPosition | undefined =>
      lastEventId === undefined ? undefined : (since?.[order.indexOf(name)] ?? { offset: -1, epoch: '' });
    order.forEach((name) => {
      const from = fromOf(name);
      if (from && from.offset >= 0) conn.setPosition(name, from);
    });
    const answer = conn.sseAnswer();
    for (const ch of channels) {
      let sub;
      try {
        sub = await this.node.subscribeResolved(conn, ch, fromOf(ch.name), answer);
      } catch (err) {
        if (url.searchParams.getAll('channel').includes(ch.name) || !(err instanceof HubError)) throw err;
        refused[ch.name] = err.toWire();
        continue;
      }
      if (!sub || conn.closed) return;
      positions[sub.channel.name] = { offset: sub.offset, epoch: sub.epoch };
    }
    // One `subscribed` event with where every channel stands; pages of a large recovery and
    // live publications follow, in order per channel.
    const subscribed: Record<string, unknown> = { client: conn.id, channels: positions };
    if (Object.keys(refused).length > 0) subscribed.refused = refused;
    conn.sendEvent('subscribed', JSON.stringify(subscribed));
  }

  /**
   * The requested channels: up to maxChannelsPerConnection distinct `channel` parameters (none
   * when the identity brings server-side channels; checked once it is known).
   */
  private channels(url: URL): string[] {
    const channels = [...new Set(url.searchParams.getAll('channel'))];
    if (channels.length > this.node.options.limits.maxChannelsPerConnection) throw new HubError(106, 'too many channels');
    return channels;
  }
}

function lastEventIdOf(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers['last-event-id'];
  const value = typeof header === 'string' ? header : (url.searchParams.get('lastEventId') ?? undefined);
  return value === undefined || value === '' ? undefined : value;
}
