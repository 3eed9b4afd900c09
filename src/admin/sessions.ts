import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { KeyedBuckets } from '../limits/keyed-buckets.js';
import { HubError } from '../protocol/errors.js';

export const ADMIN_COOKIE = 'sb_admin';
/** Most admin sessions held at once; the oldest goes first past it. */
const MAX_SESSIONS = 1_000;

interface AdminSession {
  expiresAt: number;
  /** Sent back on every state-changing request as X-CSRF-Token. */
  csrf: string;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * Admin logins and their sessions, held in this process (a restart logs everyone out). A login
 * takes the API key or the admin password; the session id travels only in an HttpOnly,
 * SameSite=Strict cookie scoped to /admin, and every state-changing request must also carry the
 * session's CSRF token in a header, which another site can neither read nor set.
 */
export class AdminSessions {
  private readonly sessions = new Map<string, AdminSession>();
  /** Failed logins per address: 5 a minute. */
  private readonly failures = new KeyedBuckets({ perSecond: 5 / 60, burst: 5 });

  constructor(
    private readonly secrets: () => readonly string[],
    private readonly ttlMs: number,
  ) {}

  /** Whether any credential is configured (without one nobody can log in). */
  get enabled(): boolean {
    return this.secrets().length > 0;
  }

  /** Checks a password; resolves the new session id and its CSRF token, or throws 101 / 137. */
  login(password: string, ip: string): { id: string; csrf: string; maxAgeSeconds: number } {
    const given = digest(password);
    // Every configured secret is compared (constant time), so timing does not tell which matched.
    let ok = false;
    for (const secret of this.secrets()) ok = timingSafeEqual(given, digest(secret)) || ok;
    if (!ok) {
      if (!this.failures.take(ip)) throw new HubError(137, 'too many failed logins from this address: wait a minute');
      throw new HubError(101, this.enabled ? 'wrong password or API key' : 'no admin password or API key is configured');
    }
    this.sweep();
    while (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    this.sessions.set(id, { expiresAt: Date.now() + this.ttlMs, csrf });
    return { id, csrf, maxAgeSeconds: Math.floor(this.ttlMs / 1000) };
  }

  logout(req: IncomingMessage): void {
    const id = cookieOf(req, ADMIN_COOKIE);
    if (id !== undefined) this.sessions.delete(id);
  }

  /** The request's live session, if any. */
  sessionOf(req: IncomingMessage): { csrf: string; expiresAt: number } | undefined {
    const id = cookieOf(req, ADMIN_COOKIE);
    if (id === undefined) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    if (session.expiresAt <= Date.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return session;
  }

  /** Throws 101 without a session; for a state-changing request also 136 without its CSRF token. */
  authorize(req: IncomingMessage, changesState: boolean): void {
    const session = this.sessionOf(req);
    if (!session) throw new HubError(101, 'log in first');
    if (!changesState) return;
    assertSameOrigin(req);
    const header = req.headers['x-csrf-token'];
    if (typeof header !== 'string' || !timingSafeEqual(digest(header), digest(session.csrf)))
      throw new HubError(136, 'missing or wrong X-CSRF-Token');
  }

  stop(): void {
    this.failures.stop();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
  }
}

/** The Set-Cookie value of a session (Secure when the request came over TLS or via an HTTPS proxy). */
export function sessionCookie(req: IncomingMessage, id: string, maxAgeSeconds: number): string {
  const secure = (req.socket as { encrypted?: boolean }).encrypted === true || req.headers['x-forwarded-proto'] === 'https';
  return `${ADMIN_COOKIE}=${id}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}

export function clearedCookie(): string {
  return `${ADMIN_COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0`;
}

/** A browser's cross-site request carries its Origin; refuse one whose host is not the request's. */
export function assertSameOrigin(req: IncomingMessage): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    throw new HubError(136, 'malformed Origin');
  }
  if (host !== req.headers.host) throw new HubError(136, `cross-origin request from ${origin} refused`);
}

function cookieOf(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
