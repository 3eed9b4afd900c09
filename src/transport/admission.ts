import type { IncomingMessage } from 'node:http';
import { TokenBucket } from '../connection/token-bucket.js';
import type { Node } from '../hub/node.js';

export interface Refusal {
  status: number;
  message: string;
}

/**
 * Checks every new connection, WebSocket or SSE, before any work is done for it: shutdown,
 * origin, the connection cap and the per-IP connection rate.
 */
export class Admission {
  private readonly ipBuckets = new Map<string, TokenBucket>();
  private readonly sweepTimer: NodeJS.Timeout;
  private accepting = true;

  constructor(private readonly node: Node) {
    this.sweepTimer = setInterval(() => {
      for (const [ip, bucket] of this.ipBuckets) if (bucket.full()) this.ipBuckets.delete(ip);
    }, 10_000);
    this.sweepTimer.unref();
  }

  refusal(req: IncomingMessage): Refusal | undefined {
    if (!this.accepting) return { status: 503, message: 'server shutting down' };
    if (!this.originAllowed(req)) return { status: 403, message: 'origin not allowed' };
    const limits = this.node.options.limits;
    if (this.node.connections.size >= limits.maxConnections) return { status: 503, message: 'connection limit reached' };
    const ip = req.socket.remoteAddress ?? '';
    let bucket = this.ipBuckets.get(ip);
    if (!bucket) {
      bucket = new TokenBucket(limits.connectionRatePerIp.perSecond, limits.connectionRatePerIp.burst);
      this.ipBuckets.set(ip, bucket);
    }
    if (!bucket.take()) return { status: 429, message: 'too many connections from this address' };
    return undefined;
  }

  /**
   * Same origin always passes; others only when on `allowedOrigins` (or it holds `*`). A request
   * without an Origin header follows `allowMissingOrigin`.
   */
  originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    const { allowedOrigins, allowMissingOrigin } = this.node.options;
    if (origin === undefined) return allowMissingOrigin;
    if (allowedOrigins.includes('*') || allowedOrigins.includes(origin)) return true;
    try {
      return new URL(origin).host === req.headers.host;
    } catch {
      return false;
    }
  }

  /** Refuses everything from now on (graceful shutdown). */
  stop(): void {
    this.accepting = false;
    clearInterval(this.sweepTimer);
  }
}

/** The token a request carries: `Authorization: Bearer`, then the cookie, then `?token=`. */
export function requestToken(req: IncomingMessage, cookieName?: string): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  if (cookieName !== undefined && req.headers.cookie) {
    for (const part of req.headers.cookie.split(';')) {
      const eq = part.indexOf('=');
      if (eq !== -1 && part.slice(0, eq).trim() === cookieName) return decodeURIComponent(part.slice(eq + 1).trim());
    }
  }
  const q = req.url?.indexOf('?') ?? -1;
  if (q === -1) return undefined;
  return new URLSearchParams(req.url!.slice(q + 1)).get('token') ?? undefined;
}
