/**
 * Property-based fuzzing of the hub's HTTP side (fast-check): random request targets (among
 * them ones WHATWG URL cannot parse, such as `//a:b/x`, raw bytes, huge ones), methods,
 * versions, headers and bodies, written as raw HTTP/1.1 text on `net` sockets so that malformed
 * targets reach the server as they are, against /api/* (with and without the API key), /sse,
 * /healthz, /readyz, /metrics, /ws and the static pages.
 *
 * The hub runs in a child process (test/support/processes.ts), so that a request that crashes
 * it fails this test, with the request and the crash's stderr, instead of killing vitest.
 *
 * Properties:
 * - every request gets one well-formed HTTP/1.x response (status line, header lines, a body
 *   framed by Content-Length or chunked encoding, or a stream), with a status below 500 or a
 *   documented 5xx (503; 505 for a request that is not HTTP/1.x);
 * - the hub never crashes; afterwards /healthz answers 200, and a WebSocket client connected
 *   before the run still receives a publication made after it.
 */
import fc from 'fast-check';
import { connect as netConnect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../src/index.js';
import { TEST_API_KEY, TEST_SECRET } from './support/harness.js';
import { killProcesses, startHubProcess, type HubProcess } from './support/processes.js';
import { ProtocolClient } from './support/protocol-client.js';

const RUNS = 3_000;
/** Give up (and fail) after this many crashes; each one costs a restart. */
const MAX_CRASHES = 3;
const REQUEST_TIMEOUT_MS = 5_000;

const HUB_OPTIONS = {
  dataDir: null,
  apiKey: TEST_API_KEY,
  auth: { secret: TEST_SECRET },
  namespaces: { chat: {}, room: { presence: true, joinLeave: true } },
  webDir: fileURLToPath(new URL('../web', import.meta.url)),
  sse: { cookieName: 'sbtoken' },
  limits: {
    shutdownSpreadMs: 0,
    shutdownTimeoutMs: 2_000,
    // One client makes thousands of connections here: the per-IP rate would answer most with 429.
    connectionRatePerIp: { perSecond: 1_000_000, burst: 1_000_000 },
  },
};

let hub: HubProcess;
let token: string;
let watcher: ProtocolClient;
const crashes: Array<{ request: string; exit: string; stderr: string }> = [];
/** Statuses seen (and 'none' for closes without a response), reported to show what the fuzz reached. */
const seen = new Map<string, number>();
const note = (what: string): void => void seen.set(what, (seen.get(what) ?? 0) + 1);

async function startHub(): Promise<void> {
  hub = await startHubProcess(HUB_OPTIONS);
}

beforeAll(async () => {
  token = await signToken({ secret: TEST_SECRET, user: 'alice', ttl: '1h' });
  await startHub();
  watcher = await ProtocolClient.open(hub.wsUrl);
  await watcher.connect(await signToken({ secret: TEST_SECRET, user: 'watcher', ttl: '1h' }));
  await watcher.subscribe('chat:sentinel');
}, 30_000);

afterAll(async () => {
  watcher?.terminate();
  await killProcesses();
});

// ---- raw HTTP ------------------------------------------------------------------------------

interface Response {
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
  /** The response is a stream (SSE, or a 101 upgrade) that was cut after its head. */
  streaming: boolean;
}

type Outcome = { kind: 'response'; response: Response } | { kind: 'closed'; received: Buffer } | { kind: 'timeout'; received: Buffer };

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Parses one complete response from `buf`: the response and its length, undefined if incomplete; throws if malformed. */
function parseResponse(buf: Buffer, method: string): { response: Response; length: number } | undefined {
  const headEnd = buf.indexOf('\r\n\r\n');
  if (headEnd === -1) {
    if (buf.length > 64 * 1024) throw new Error('response head larger than 64 KiB');
    return undefined;
  }
  const lines = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: [^\r\n]*)?$/.exec(lines[0]!);
  if (!m) throw new Error(`malformed status line ${JSON.stringify(lines[0])}`);
  const status = Number(m[1]);
  const headers: Array<[string, string]> = [];
  for (const l of lines.slice(1)) {
    const colon = l.indexOf(':');
    if (colon <= 0 || !TOKEN_RE.test(l.slice(0, colon))) throw new Error(`malformed header line ${JSON.stringify(l)}`);
    headers.push([l.slice(0, colon).toLowerCase(), l.slice(colon + 1).trim()]);
  }
  const get = (name: string): string[] => headers.filter(([k]) => k === name).map(([, v]) => v);
  const start = headEnd + 4;
  const response = (body: Buffer, streaming = false): Response => ({ status, headers, body, streaming });
  if (status === 101) return { response: response(Buffer.alloc(0), true), length: start };
  if ((status >= 100 && status < 200) || status === 204 || status === 304 || method === 'HEAD') {
    return { response: response(Buffer.alloc(0)), length: start };
  }
  // An event stream never ends: its head is the whole answer.
  if (get('content-type').some((v) => v.startsWith('text/event-stream')))
    return { response: response(buf.subarray(start), true), length: buf.length };
  const te = get('transfer-encoding');
  const cl = get('content-length');
  if (te.length > 0 && cl.length > 0) throw new Error('both Transfer-Encoding and Content-Length');
  if (cl.length > 1 && new Set(cl).size > 1) throw new Error(`conflicting Content-Length ${cl}`);
  if (te.some((v) => /chunked/i.test(v))) {
    let at = start;
    const chunks: Buffer[] = [];
    for (;;) {
      const eol = buf.indexOf('\r\n', at);
      if (eol === -1) return undefined;
      const sizeText = buf.subarray(at, eol).toString('latin1').split(';')[0]!.trim();
      if (!/^[0-9a-fA-F]+$/.test(sizeText)) throw new Error(`malformed chunk size ${JSON.stringify(sizeText)}`);
      const size = parseInt(sizeText, 16);
      if (size === 0) {
        const end = buf.indexOf('\r\n\r\n', eol);
        if (end === -1 && buf.length < eol + 4) return undefined;
        if (end === -1) return undefined;
        return { response: response(Buffer.concat(chunks)), length: end + 4 };
      }
      if (buf.length < eol + 2 + size + 2) return undefined;
      chunks.push(buf.subarray(eol + 2, eol + 2 + size));
      if (buf.toString('latin1', eol + 2 + size, eol + 4 + size) !== '\r\n') throw new Error('chunk not followed by CRLF');
      at = eol + 4 + size;
    }
  }
  if (cl.length > 0) {
    if (!/^\d+$/.test(cl[0]!)) throw new Error(`malformed Content-Length ${cl[0]}`);
    const n = Number(cl[0]);
    if (buf.length < start + n) return undefined;
    return { response: response(buf.subarray(start, start + n)), length: start + n };
  }
  // No framing: the body runs to the end of the connection (the caller passes `closed`).
  return undefined;
}

/** Writes `request` on a fresh connection and reads the first final response. */
function exchange(port: number, request: Buffer, method: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ port, host: '127.0.0.1' });
    let buf = Buffer.alloc(0);
    let settled = false;
    const finish = (o: Outcome | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (o instanceof Error) reject(o);
      else resolve(o);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout', received: buf }), REQUEST_TIMEOUT_MS);
    const tryParse = (closed: boolean): void => {
      try {
        for (;;) {
          const parsed = parseResponse(buf, method);
          if (!parsed) break;
          if (parsed.response.status >= 100 && parsed.response.status < 200 && parsed.response.status !== 101) {
            buf = buf.subarray(parsed.length); // interim (100 Continue): the final one follows
            continue;
          }
          finish({ kind: 'response', response: parsed.response });
          return;
        }
        if (closed) {
          const headEnd = buf.indexOf('\r\n\r\n');
          if (headEnd !== -1) {
            // A response delimited by the end of the connection.
            const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(buf.toString('latin1', 0, 20))?.[1] ?? 0);
            finish({ kind: 'response', response: { status, headers: [], body: buf.subarray(headEnd + 4), streaming: false } });
          } else {
            finish({ kind: 'closed', received: buf });
          }
        }
      } catch (err) {
        finish(
          new Error(`malformed response: ${(err as Error).message}; received ${JSON.stringify(buf.toString('latin1').slice(0, 500))}`),
        );
      }
    };
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      tryParse(false);
    });
    socket.on('error', () => tryParse(true));
    socket.on('close', () => tryParse(true));
    socket.on('connect', () => socket.write(request));
  });
}

// ---- arbitraries ---------------------------------------------------------------------------

/** Targets WHATWG URL cannot parse against a base, though HTTP parsers let them through. */
const UNPARSABLE_TARGETS = [
  '//a:b/x',
  '//a:99999/',
  '//[::1',
  '//[/',
  '//%zz/',
  '//a:b',
  '/\\a:b/x',
  '\\\\a:b/x',
  '//user:pass@:x/',
  'http://a:b/',
  'http://[/',
  '//:b/',
  '//a:b/api/publish',
  '//a:b/healthz',
  '//a:b/sse?channel=chat:x',
];

const PATHS = [
  '/api/publish',
  '/api/broadcast',
  '/api/history',
  '/api/presence',
  '/api/notify',
  '/api/status',
  '/api/channels',
  '/api/info',
  '/api/disconnect',
  '/api/unsubscribe',
  '/api/openapi.json',
  '/api/nope',
  '/api',
  '/api/',
  '/sse',
  '/healthz',
  '/readyz',
  '/metrics',
  '/ws',
  '/',
  '/index.html',
  '/chat.html',
  '/chat.js',
  '/style.css',
  '/client.js',
  '/nope.html',
  '/..%2f..%2fpackage.json',
  '/../../package.json',
  '/%2e%2e/%2e%2e/package.json',
  '/web/../package.json',
];

const QUERY_PARTS = [
  'channel=chat:x',
  'channel=chat:sentinel',
  'channel=room:a',
  'channel=nope:x',
  'channel=',
  'channel=%zz',
  'channel=a%00b',
  'limit=5',
  'limit=-1',
  'limit=99999999999',
  'since=1',
  'epoch=xyz',
  'user=alice',
  'user=',
  'lastEventId=1:abc.5',
  'lastEventId=%zz',
  'foo=bar',
  'token=TOKEN',
  'token=bad',
  '%',
  '&&&',
  '=',
  'channel=chat:x&channel=chat:x',
];

const urlChar = fc.constantFrom(..."abcXYZ019-._~!$&'()*+,;=:@/?#[]%".split(''), '%2F', '%00', '%zz', '%e2%82%ac', '%ff', '..', '//');

const target: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc
      .tuple(fc.constantFrom(...PATHS), fc.array(fc.constantFrom(...QUERY_PARTS), { maxLength: 4 }))
      .map(([p, q]) => (q.length ? `${p}?${q.join('&')}` : p)),
  },
  { weight: 2, arbitrary: fc.constantFrom(...UNPARSABLE_TARGETS) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...PATHS, ''), fc.array(urlChar, { maxLength: 12 })).map(([p, cs]) => p + cs.join('')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }).map((s) => `/${s}`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('*', '', 'http://localhost/healthz', 'http://evil.example/api/info', 'localhost:80', 'api/info', '?', '#'),
  },
  { weight: 1, arbitrary: fc.constantFrom(1_000, 8_000, 17_000, 70_000).map((n) => `/api/history?channel=${'a'.repeat(n)}`) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 20 }).map((b) => `/${Buffer.from(b).toString('latin1')}`) },
);

const method = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH') },
  { weight: 1, arbitrary: fc.constantFrom('TRACE', 'get', 'FOO', 'PRI', 'M-SEARCH', 'GET GET', '') },
);

const version = fc.oneof(
  { weight: 20, arbitrary: fc.constant('HTTP/1.1') },
  { weight: 1, arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', 'FOO/1.1', 'HTTP/1', '') },
);

const authorization = fc.constantFrom(
  undefined,
  undefined,
  `apikey ${TEST_API_KEY}`,
  `apikey ${TEST_API_KEY}`,
  `apikey ${TEST_API_KEY}`,
  `apikey ${TEST_API_KEY}`,
  'apikey wrong-key-0123456789',
  'apikey',
  `ApiKey ${TEST_API_KEY}`,
  'Bearer TOKEN',
  'Bearer bad.token.here',
  'Basic Zm9vOmJhcg==',
  '',
);

type Header = [string, string];

const extraHeader: fc.Arbitrary<Header> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom<Header>(
      ['Content-Type', 'application/json'],
      ['Content-Type', 'text/plain; charset=latin1'],
      ['Accept', 'text/event-stream'],
      ['Origin', 'http://evil.example'],
      ['Origin', 'null'],
      ['Origin', '%zz'],
      ['Cookie', 'sbtoken=%zz'],
      ['Cookie', 'sbtoken=TOKEN'],
      ['Cookie', 'a=b; sbtoken='],
      ['Last-Event-ID', '1:xY3k_9aB.41,.0'],
      ['Last-Event-ID', 'garbage'],
      ['Last-Event-ID', '1:' + 'a'.repeat(9000)],
      ['Expect', '100-continue'],
      ['Connection', 'keep-alive'],
      ['Upgrade', 'websocket'],
      ['Connection', 'Upgrade'],
      ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='],
      ['Sec-WebSocket-Version', '13'],
      ['Sec-WebSocket-Version', '8'],
      ['Host', 'evil.example'],
      ['Host', ''],
      ['Content-Length', 'abc'],
      ['Content-Length', '-1'],
      ['Transfer-Encoding', 'gzip'],
      ['X-Forwarded-For', '1.2.3.4'],
    ),
  },
  { weight: 3, arbitrary: fc.tuple(fc.stringMatching(/^X-[A-Za-z0-9-]{1,15}$/), fc.stringMatching(/^[ -~]{0,30}$/)) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom('X-Bad Name', 'X-Bad:Name', '', 'X-\u00e9'), fc.constantFrom('v', '\u00ff', 'a\u0000b', 'a\rb')),
  },
);

const bodyText: fc.Arbitrary<string | Buffer> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.constantFrom('chat:x', 'chat:sentinel', 'room:a', 'nope:x', '', 'bad channel'), fc.jsonValue({ maxDepth: 3 }))
      .map(([channel, data]) => JSON.stringify({ channel, data })),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '{',
      '{"channel":',
      'null',
      '[]',
      '""',
      '{"channel":"chat:x","data":1,"extra":2}',
      '{"user":"alice","data":{}}',
      '{"channels":["chat:x","chat:x"],"data":1}',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(10, 1_000, 5_000).map((d) => `{"channel":"chat:x","data":${'['.repeat(d)}${']'.repeat(d)}}`),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.constant('x'.repeat(70 * 1024)) },
);

type BodyMode = 'none' | 'length' | 'chunked';

interface RawRequest {
  method: string;
  target: string;
  version: string;
  host: boolean;
  authorization: string | undefined;
  headers: Header[];
  body: string | Buffer | undefined;
  mode: BodyMode;
}

const request: fc.Arbitrary<RawRequest> = fc.record({
  method,
  target,
  version,
  host: fc.oneof({ weight: 10, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  authorization,
  headers: fc.array(extraHeader, { maxLength: 3 }),
  body: fc.option(bodyText, { freq: 2 }).map((b) => b ?? undefined),
  mode: fc.constantFrom<BodyMode>('length', 'length', 'chunked', 'none'),
});

function render(r: RawRequest, port: number): Buffer {
  const sub = (s: string): string => s.replaceAll('TOKEN', token);
  const lines: string[] = [`${r.method} ${sub(r.target)} ${r.version}`.trimEnd()];
  if (r.host) lines.push(`Host: 127.0.0.1:${port}`);
  if (r.authorization !== undefined) lines.push(`Authorization: ${sub(r.authorization)}`);
  for (const [k, v] of r.headers) lines.push(`${k}: ${sub(v)}`);
  lines.push('Connection: close');
  let body: Buffer = Buffer.alloc(0);
  if (r.body !== undefined && r.mode !== 'none') {
    const raw = Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body);
    if (r.mode === 'length') {
      lines.push(`Content-Length: ${raw.length}`);
      body = raw;
    } else {
      lines.push('Transfer-Encoding: chunked');
      const half = Math.floor(raw.length / 2);
      const parts = [raw.subarray(0, half), raw.subarray(half)].filter((p) => p.length > 0);
      body = Buffer.concat([
        ...parts.flatMap((p) => [Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]),
        Buffer.from('0\r\n\r\n'),
      ]);
    }
  }
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}

function describeRequest(raw: Buffer): string {
  const text = raw.toString('latin1');
  return JSON.stringify(text.length > 700 ? `${text.slice(0, 500)}…(${text.length} bytes)…${text.slice(-100)}` : text);
}

/** True once the hub process has exited (waiting a little: a crash may lag its closed socket). */
async function hubDied(): Promise<boolean> {
  const child = hub.child;
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, 300);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** The documented 5xx statuses: 503 (unavailable: broker, shutdown, limits). */
function statusAllowed(status: number, r: RawRequest): boolean {
  if (status >= 100 && status < 500) return true;
  if (status === 503) return true;
  // A request line that is not HTTP/1.x may get 505 HTTP Version Not Supported from Node itself.
  if (status === 505 && !/^HTTP\/1\.[01]$/.test(r.version)) return true;
  return false;
}

/** Whether getting no response at all is legitimate for this request. */
function noResponseAllowed(r: RawRequest): boolean {
  // A request line Node cannot read at all may be answered by a plain close.
  return r.method === '' || r.method.includes(' ') || r.version === '' || r.target === '';
}

// ---- the property --------------------------------------------------------------------------

async function checkRequest(r: RawRequest): Promise<void> {
  const port = hub.port;
  const raw = render(r, port);
  const outcome = await exchange(port, raw, r.method);
  if (outcome.kind !== 'response' && (await hubDied())) {
    const exit = `${hub.child.exitCode ?? hub.child.signalCode}`;
    crashes.push({ request: describeRequest(raw), exit, stderr: hub.stderr() });
    if (crashes.length >= MAX_CRASHES) throw new Error(`the hub crashed ${crashes.length} times; see the crash report`);
    await startHub(); // go on fuzzing a fresh hub; the test fails at the end with every crash
    return;
  }
  if (outcome.kind === 'timeout') {
    throw new Error(
      `no complete response within ${REQUEST_TIMEOUT_MS} ms to ${describeRequest(raw)}; received ${JSON.stringify(outcome.received.toString('latin1').slice(0, 300))}`,
    );
  }
  if (outcome.kind === 'closed') {
    note('none');
    if (noResponseAllowed(r)) return;
    throw new Error(
      `connection closed without a response to ${describeRequest(raw)}; received ${JSON.stringify(outcome.received.toString('latin1').slice(0, 300))}`,
    );
  }
  const { status, body, headers } = outcome.response;
  note(String(status));
  if (!statusAllowed(status, r)) {
    throw new Error(
      `status ${status} (not < 500 nor a documented 5xx) for ${describeRequest(raw)}; body ${JSON.stringify(body.toString('utf8').slice(0, 300))}`,
    );
  }
  // JSON error bodies are well-formed and carry registered shapes.
  const type = headers.find(([k]) => k === 'content-type')?.[1] ?? '';
  if (type.startsWith('application/json') && status >= 400 && body.length > 0) {
    let parsed: any;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new Error(
        `status ${status} with a malformed JSON body ${JSON.stringify(body.toString('utf8').slice(0, 200))} for ${describeRequest(raw)}`,
      );
    }
    if (typeof parsed?.error !== 'object' && typeof parsed?.error !== 'string') {
      throw new Error(`status ${status} without an error object: ${body.toString('utf8').slice(0, 200)} for ${describeRequest(raw)}`);
    }
  }
}

async function get(path: string): Promise<Outcome> {
  return exchange(hub.port, Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`), 'GET');
}

const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

describe('HTTP fuzz', () => {
  it(`${RUNS} raw requests: well-formed responses, no 5xx but 503, the hub stays up (seed ${seed})`, async () => {
    const first = hub;
    let stoppedBy: unknown;
    try {
      await fc.assert(fc.asyncProperty(request, checkRequest), { numRuns: RUNS, seed, endOnFailure: true });
    } catch (err) {
      stoppedBy = err;
    }
    if (crashes.length > 0) {
      const report = crashes
        .map(
          (c, i) =>
            `crash ${i + 1} (exit ${c.exit}) on request ${c.request}\n--- stderr ---\n${c.stderr.trim().split('\n').slice(0, 25).join('\n')}`,
        )
        .join('\n\n');
      throw new Error(`the hub process crashed on ${crashes.length} request(s):\n${report}`);
    }
    if (stoppedBy) throw stoppedBy;

    console.log(`fuzz-http: ${RUNS} requests, statuses ${JSON.stringify(Object.fromEntries([...seen].sort()))}`);
    expect(hub).toBe(first);
    const health = await get('/healthz');
    expect(health.kind === 'response' && health.response.status).toBe(200);
    // The WebSocket client connected before the run still gets what is published after it.
    hub.publish('chat:sentinel', { after: 'fuzz' });
    const pub = await watcher.waitFor((m) => m.push === 'pub' && m.channel === 'chat:sentinel');
    expect(pub.data).toEqual({ after: 'fuzz' });
    expect(watcher.isOpen).toBe(true);
  }, 60_000);
});
