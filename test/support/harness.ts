import { createHub, signToken, type CreateHubOptions, type Hub } from '../../src/index.js';
import { ProtocolClient, type OpenOptions } from './protocol-client.js';

/** The HS256 secret every test server accepts unless a test brings its own key. */
export const TEST_SECRET = 'switchboard-test-secret-0123456789abcdef';
export const TEST_API_KEY = 'test-api-key-0123456789';

export interface TokenExtra {
  ttl?: number | string;
  channels?: string[];
  info?: unknown;
  audience?: string;
  issuer?: string;
}

export interface ClientOptions extends OpenOptions {
  /** User to sign a token for (default `alice`). */
  user?: string;
  /** A token to use as is; `null` sends `connect` without one. */
  token?: string | null;
  /** Claims for the signed token. */
  tokenExtra?: TokenExtra;
  /** Send `connect` (default true). */
  connect?: boolean;
}

export interface TestServer {
  hub: Hub;
  port: number;
  /** ws://127.0.0.1:PORT/ws */
  url: string;
  /** http://127.0.0.1:PORT */
  httpUrl: string;
  /** The admin listener, when the options set `adminPort`. */
  adminUrl?: string;
  /** An HS256 token for `user`, signed with TEST_SECRET. */
  token(user: string, extra?: TokenExtra): Promise<string>;
  /** A protocol client, connected (unless `connect: false`). `connectResult` holds the reply. */
  client(options?: ClientOptions): Promise<ProtocolClient & { connectResult?: any }>;
  /** Opens a client with full control of the handshake (not connected). */
  open(options?: OpenOptions & { query?: string }): Promise<ProtocolClient>;
  close(): Promise<void>;
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

function merge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlain(v) && isPlain(out[k]) ? merge(out[k] as Plain, v) : v;
  }
  return out;
}

const servers = new Set<TestServer>();

/**
 * Starts a hub on 127.0.0.1, port 0, with test defaults (an HS256 secret, memory mode, instant
 * shutdown, a `chat` namespace) deep-merged with `options`. Everything it opens is tracked and
 * closed by `closeAllServers()` (call it in afterEach).
 */
export async function createTestServer(options: Partial<CreateHubOptions> = {}): Promise<TestServer> {
  const defaults: Plain = {
    dataDir: null,
    apiKey: TEST_API_KEY,
    limits: { shutdownSpreadMs: 0, shutdownTimeoutMs: 5_000 },
    namespaces: { chat: {} },
  };
  const auth = (options.auth ?? {}) as Plain;
  const hasKey = auth.secret !== undefined || auth.publicKey !== undefined || auth.jwksUrl !== undefined;
  const input = merge(defaults, options as Plain);
  input.auth = hasKey ? auth : { ...auth, secret: TEST_SECRET };
  // Hooks and injected objects must not be cloned.
  if (options.hooks) input.hooks = options.hooks;

  const hub = createHub(input as CreateHubOptions);
  const { port, url, httpUrl, adminUrl } = await hub.listen(0, '127.0.0.1');
  const clients = new Set<ProtocolClient>();
  let closing: Promise<void> | undefined;

  const server: TestServer = {
    hub,
    port,
    url,
    httpUrl,
    ...(adminUrl ? { adminUrl } : {}),
    token: (user, extra = {}) => signToken({ secret: TEST_SECRET, user, ...extra }),
    async open(opts = {}) {
      const c = await ProtocolClient.open(opts.query ? `${url}?${opts.query}` : url, opts);
      clients.add(c);
      return c;
    },
    async client(opts = {}) {
      const c = (await server.open(opts)) as ProtocolClient & { connectResult?: any };
      if (opts.connect === false) return c;
      const token = opts.token === null ? undefined : (opts.token ?? (await server.token(opts.user ?? 'alice', opts.tokenExtra)));
      c.connectResult = await c.connect(token);
      return c;
    },
    close() {
      closing ??= (async () => {
        servers.delete(server);
        for (const c of clients) c.terminate();
        await hub.close();
      })();
      return closing;
    },
  };
  servers.add(server);
  return server;
}

/** Closes every test server still open (and their clients). */
export async function closeAllServers(): Promise<void> {
  await Promise.all([...servers].map((s) => s.close()));
}

/** Polls `check` (sync or async) until it returns something other than undefined/false. */
export function until<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 10,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = (): void => {
      Promise.resolve()
        .then(check)
        .then(
          (v) => {
            if (v !== undefined && v !== false) return resolve(v);
            if (Date.now() - started > timeoutMs) return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
            setTimeout(poll, intervalMs);
          },
          (err: unknown) => reject(err as Error),
        );
    };
    poll();
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Lets pending I/O callbacks and setImmediate work (the hub's write flush) run. */
export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** base64url of a JSON value or string. */
export function b64url(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);
