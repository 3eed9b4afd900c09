import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { StreamPosition } from '../stream/types.js';
import { SseConnection } from '../connection/sse-connection.js';
import type { Node } from '../hub/node.js';
import type { Recovery } from '../hub/recovery.js';
import type { Subscription } from '../hub/subscription.js';
import { CloseCode } from '../protocol/close-codes.js';
import { HubError } from '../protocol/errors.js';
import { parseEventId } from '../protocol/sse-event-id.js';
import { sendError, sendJson } from '../http/respond.js';
import { requestToken, type Admission } from './admission.js';
import type { Transport } from '../connection/transport.js';

class SseTransport implements Transport {
  readonly kind = 'sse' as const;

  constructor(private readonly res: ServerResponse) {}

  send(frame: Buffer): void {
    if (!this.res.writableEnded) this.res.write(frame);
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
 * browser's Last-Event-ID.
 */
export class SseAcceptor {
  constructor(
    private readonly node: Node,
    private readonly admission: Admission,
    private readonly logger: Logger,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.cors(req, res);
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
      sendJson(res, refusal.status, { error: { code: refusal.status === 403 ? 103 : 114, message: refusal.message } });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    let conn: SseConnection | undefined;
    try {
      const identity = await this.node.verifier.verify(requestToken(req, this.node.options.sse.cookieName));
      const channels = this.channels(url);
      conn = new SseConnection(
        this.node,
        new SseTransport(res),
        { ip: req.socket.remoteAddress ?? '', headers: req.headers, identity },
        channels,
      );
      conn.identity = identity;
      // Permission failures answer with an HTTP error before the stream starts.
      for (const channel of channels) await this.node.authorizeSubscribe(conn, channel);
      this.node.register(conn);
      await conn.establish(identity);
      await this.stream(req, res, conn, url, channels);
    } catch (err) {
      conn?.transportClosed();
      if (!res.headersSent) sendError(res, err);
      else conn?.close(CloseCode.INTERNAL);
    }
  }

  private async stream(req: IncomingMessage, res: ServerResponse, conn: SseConnection, url: URL, channels: string[]): Promise<void> {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    req.socket.setNoDelay(true);
    req.socket.setTimeout(0);
    res.on('close', () => conn.transportClosed());
    conn.enqueue(Buffer.from(`retry: ${this.node.options.sse.retryMs}\n\n`));

    const lastEventId = lastEventIdOf(req, url);
    const since = lastEventId === undefined ? undefined : parseEventId(lastEventId, channels.length);
    const opened: Array<{ sub: Subscription; recovery: Recovery; since: StreamPosition | undefined }> = [];
    for (let i = 0; i < channels.length; i++) {
      // A Last-Event-ID that does not parse still means the client had a position: a
      // position no stream has, so every channel reports recovery-failed.
      const from = lastEventId === undefined ? undefined : (since?.[i] ?? { offset: -1, epoch: '' });
      const result = await this.node.openSubscription(conn, channels[i]!, from);
      if (!result) return;
      opened.push({ ...result, since: from });
      conn.setPosition(channels[i]!, from && result.recovery.recovered ? from : result.recovery.position);
    }
    // Recovered publications first, in order, then one `subscribed` event with every position,
    // then live publications: nothing in between, so nothing is missed or repeated.
    for (const { sub, recovery, since: from } of opened) {
      if (from && !recovery.recovered) {
        conn.sendEvent('recovery-failed', JSON.stringify({ channel: sub.channel.name, position: recovery.position }), false);
      }
      for (const pub of recovery.publications) conn.sendRecovered(sub.channel.name, recovery.position.epoch, pub);
    }
    const positions = Object.fromEntries(opened.map(({ sub, recovery }) => [sub.channel.name, recovery.position]));
    conn.sendEvent('subscribed', JSON.stringify({ client: conn.id, channels: positions }));
    await Promise.all(opened.map(({ sub, recovery }) => this.node.activate(sub, recovery.position)));
  }

  /** The requested channels: 1 to maxChannelsPerConnection distinct `channel` parameters. */
  private channels(url: URL): string[] {
    const channels = [...new Set(url.searchParams.getAll('channel'))];
    if (channels.length === 0) throw new HubError(107, 'channel: at least one channel query parameter is required');
    if (channels.length > this.node.options.limits.maxChannelsPerConnection) throw new HubError(106, 'too many channels');
    return channels;
  }

  /** CORS for allowed cross-origin requests; never a wildcard, and credentials only if configured. */
  private cors(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin;
    if (origin === undefined || !this.admission.originAllowed(req)) return;
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Vary', 'Origin');
    if (this.node.options.sse.credentials) res.setHeader('Access-Control-Allow-Credentials', 'true');
  }
}

function lastEventIdOf(req: IncomingMessage, url: URL): string | undefined {
  const header = req.headers['last-event-id'];
  const value = typeof header === 'string' ? header : (url.searchParams.get('lastEventId') ?? undefined);
  return value === undefined || value === '' ? undefined : value;
}
