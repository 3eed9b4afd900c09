/**
 * The HTTP API tests' hub and clients (test/http-api.test.ts, http-api-publish.test.ts): a hub
 * with an API key and a `room` namespace with presence, `call` for its routes, and a small
 * WebSocket client to watch what the routes do to subscribers.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect } from 'vitest';
import WebSocket from 'ws';
import { signToken } from '../../src/auth/token.js';
import { createHub, type Hub } from '../../src/index.js';

export const SECRET = 'x'.repeat(32);
export const KEY = 'k'.repeat(16);
export const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export type Json = Record<string, unknown>;

export interface CallOptions {
  body?: unknown;
  /** Sent as is instead of JSON-encoding `body`. */
  raw?: string;
  /** The Authorization header; null sends none. */
  auth?: string | null;
  /** Another hub's http://HOST:PORT (default: the shared one). */
  base?: string;
}

export interface HttpApi {
  /** A request to `path` (with the API key unless `auth` says otherwise); the answer must be JSON. */
  call(method: string, path: string, opts?: CallOptions): Promise<{ status: number; body: Json; headers: Headers }>;
  /** A connected WebSocket client of `user`, closed afterAll. */
  client(user: string): Promise<TestClient>;
}

export function errorOf(body: Json): { code: number; message: string } {
  return body.error as { code: number; message: string };
}

/** One valid request per route (besides openapi.json): used for the 401 checks. */
export const VALID: Array<{ method: string; path: string; body?: unknown }> = [
  { method: 'POST', path: '/api/publish', body: { channel: 'room:auth', data: 1 } },
  { method: 'POST', path: '/api/broadcast', body: { channels: ['room:auth'], data: 1 } },
  { method: 'GET', path: '/api/history?channel=room:auth' },
  { method: 'GET', path: '/api/presence?channel=room:auth' },
  { method: 'POST', path: '/api/disconnect', body: { user: 'nobody' } },
  { method: 'POST', path: '/api/unsubscribe', body: { user: 'nobody', channel: 'room:auth' } },
  { method: 'GET', path: '/api/channels' },
  { method: 'GET', path: '/api/info' },
  { method: 'POST', path: '/api/notify', body: { user: 'nobody', data: 1 } },
  { method: 'GET', path: '/api/status?user=nobody' },
];

/**
 * Registers beforeAll/afterAll starting (and closing) the shared hub and closing the clients;
 * returns the calls on it.
 */
export function useHttpApi(): HttpApi {
  let hub: Hub | undefined;
  let httpUrl = '';
  let wsUrl = '';
  const clients: TestClient[] = [];

  beforeAll(async () => {
    hub = createHub({ auth: { secret: SECRET }, apiKey: KEY, namespaces: { room: { presence: true } }, limits: { shutdownSpreadMs: 0 } });
    const listening = await hub.listen(0, '127.0.0.1');
    httpUrl = listening.httpUrl;
    wsUrl = listening.url;
  });

  afterAll(async () => {
    await hub?.close();
  });

  afterAll(() => {
    for (const c of clients) c.close();
  });

  return {
    async call(method, path, opts = {}) {
      const headers: Record<string, string> = {};
      const auth = opts.auth === undefined ? `apikey ${KEY}` : opts.auth;
      if (auth !== null) headers.authorization = auth;
      let body: string | undefined;
      if (opts.raw !== undefined) body = opts.raw;
      else if (opts.body !== undefined) body = JSON.stringify(opts.body);
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${opts.base ?? httpUrl}${path}`, { method, headers, body });
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      return { status: res.status, body: (await res.json()) as Json, headers: res.headers };
    },
    async client(user) {
      const c = await TestClient.connect(wsUrl, user);
      clients.push(c);
      return c;
    },
  };
}

/** A WebSocket client speaking protocol v1: collects every line and waits for matching ones. */
export class TestClient {
  readonly messages: Json[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  client = '';
  private nextId = 1;
  private waiters: Array<{ match: (m: Json) => boolean; resolve: (m: Json) => void }> = [];

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (raw: Buffer) => {
      for (const line of raw.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        const msg = JSON.parse(line) as Json;
        this.messages.push(msg);
        if (msg.push === 'ping') this.ws.send('{"method":"pong"}');
        this.waiters = this.waiters.filter((w) => {
          if (!w.match(msg)) return true;
          w.resolve(msg);
          return false;
        });
      }
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async connect(wsUrl: string, user: string): Promise<TestClient> {
    const ws = new WebSocket(wsUrl);
    const c = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const reply = await c.command('connect', { token: await signToken({ secret: SECRET, user }) });
    c.client = (reply.result as { client: string }).client;
    return c;
  }

  /** Sends a command and resolves with its reply; a reply with an error rejects. */
  async command(method: string, params: Json): Promise<Json> {
    const id = this.nextId++;
    const reply = this.waitFor((m) => m.id === id);
    this.ws.send(JSON.stringify({ id, method, params }));
    const msg = await reply;
    if (msg.error) throw new Error(`${method} failed: ${JSON.stringify(msg.error)}`);
    return msg;
  }

  subscribe(channel: string): Promise<Json> {
    return this.command('subscribe', { channel });
  }

  /** Resolves with the first message (already received or future) that matches. */
  waitFor(match: (m: Json) => boolean): Promise<Json> {
    const seen = this.messages.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  pub(channel: string): Promise<Json> {
    return this.waitFor((m) => m.push === 'pub' && m.channel === channel);
  }

  close(): void {
    this.ws.close();
  }
}
