import type { IncomingMessage } from 'node:http';
import { isIP, isIPv6 } from 'node:net';
import { KeyedBuckets } from '../limits/keyed-buckets.js';
import type { Node } from '../hub/node.js';
import { ERRORS } from '../protocol/errors.js';

/** Why a new connection is refused: an error of the registry, and its HTTP status. */
export interface Refusal {
  code: 103 | 111 | 114;
  status: number;
  message: string;
}

function refuse(code: Refusal['code'], message: string): Refusal {
  return { code, status: ERRORS[code].httpStatus, message };
}

/**
 * Checks every new connection, WebSocket or SSE, before any work is done for it: shutdown,
 * origin, the connection cap and the per-IP connection rate.
 */
export class Admission {
  private readonly perIp: KeyedBuckets;
  private accepting = true;

  constructor(private readonly node: Node) {
    this.perIp = new KeyedBuckets(node.options.limits.connectionRatePerIp);
  }

  refusal(req: IncomingMessage): Refusal | undefined {
    if (!this.accepting) return refuse(114, 'server shutting down');
    if (!this.originAllowed(req)) return refuse(103, 'origin not allowed');
    const limits = this.node.options.limits;
    if (this.node.sessions.size >= limits.maxConnections) return refuse(114, 'connection limit reached');
    if (!this.perIp.take(req.socket.remoteAddress ?? '')) return refuse(111, 'too many connections from this address');
    return undefined;
  }

  /**
   * An Origin on `allowedOrigins` (or any, with `*`) passes whatever the Host. The same origin
   * (the Origin's host equals the Host header) passes only when the Host is trusted (see
   * `hostTrusted`): a page on an attacker's domain rebound to this server's address (DNS
   * rebinding) is "same origin" too, but with the attacker's name in Host. A request without an
   * Origin header follows `allowMissingOrigin`.
   */
  originAllowed(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return this.node.options.allowMissingOrigin;
    if (this.corsOrigin(req) !== undefined) return true;
    const host = req.headers.host?.toLowerCase();
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      return false;
    }
    return originHost === host && this.hostTrusted(host);
  }

  /**
   * The Origin to echo in `Access-Control-Allow-Origin`: only one explicitly allowed by
   * `allowedOrigins` (any, with `*`). A same-origin request needs no CORS header, so a
   * rebinding origin is never echoed.
   */
  corsOrigin(req: IncomingMessage): string | undefined {
    const origin = req.headers.origin;
    if (origin === undefined) return undefined;
    const { allowedOrigins } = this.node.options;
    return allowedOrigins.includes('*') || allowedOrigins.includes(origin) ? origin : undefined;
  }

  /**
   * Whether a Host header names this server rather than a name an attacker controls: an IP
   * literal (`127.0.0.1`, `[::1]`, with or without a port), `localhost` or `*.localhost`, or a
   * name on `allowedHosts` (`chat.example.com` exactly; `.example.com` for it and every
   * subdomain; `*` for any Host, behind a proxy that checks it).
   */
  hostTrusted(hostHeader: string | undefined): boolean {
    if (hostHeader === undefined) return false;
    const hostname = hostnameOf(hostHeader);
    if (hostname === undefined) return false;
    if (isIP(hostname) !== 0 || hostname === 'localhost' || hostname.endsWith('.localhost')) return true;
    for (const entry of this.node.options.allowedHosts) {
      const allowed = entry.toLowerCase();
      if (allowed === '*' || allowed === hostname) return true;
      if (allowed.startsWith('.') && (hostname === allowed.slice(1) || hostname.endsWith(allowed))) return true;
    }
    return false;
  }

  /** Refuses everything from now on (graceful shutdown). */
  stop(): void {
    this.accepting = false;
    this.perIp.stop();
  }
}

const PORT = /^:\d{1,5}$/;

/**
 * The host name of a Host header, lowercased and without the port: `[::1]:80` gives `::1`
 * (only a bracketed IPv6 literal may hold colons). Undefined when it is not a plain host[:port].
 */
function hostnameOf(header: string): string | undefined {
  const h = header.toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end === -1) return undefined;
    const ip = h.slice(1, end);
    const rest = h.slice(end + 1);
    return isIPv6(ip) && (rest === '' || PORT.test(rest)) ? ip : undefined;
  }
  const colon = h.indexOf(':');
  const name = colon === -1 ? h : h.slice(0, colon);
  if (colon !== -1 && !PORT.test(h.slice(colon))) return undefined;
  return /^[a-z0-9_.-]+$/.test(name) ? name : undefined;
}

/** The token a request carries: `Authorization: Bearer`, then the cookie, then `?token=`. */
export function requestToken(req: IncomingMessage, cookieName?: string): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
  if (cookieName !== undefined && req.headers.cookie) {
    for (const part of req.headers.cookie.split(';')) {
      const eq = part.indexOf('=');
      if (eq !== -1 && part.slice(0, eq).trim() === cookieName) return decodeCookie(part.slice(eq + 1).trim());
    }
  }
  const q = req.url?.indexOf('?') ?? -1;
  if (q === -1) return undefined;
  return new URLSearchParams(req.url!.slice(q + 1)).get('token') ?? undefined;
}

/** A cookie value, percent-decoded; one that does not decode (`%zz`) is taken as it is (and fails as a token). */
function decodeCookie(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
