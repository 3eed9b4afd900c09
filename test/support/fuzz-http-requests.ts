/**
 * What the HTTP fuzz (test/fuzz-http.test.ts) sends and how it reads the answers: fast-check
 * arbitraries of raw HTTP/1.1 requests (targets WHATWG URL cannot parse, raw bytes, huge ones;
 * methods, versions, headers, bodies), their rendering as bytes, a raw `net` exchange with a
 * strict response parser, and which outcomes are allowed.
 */
import fc from 'fast-check';
import { connect as netConnect } from 'node:net';
import { TEST_API_KEY } from './harness.js';

/** How long one exchange may take before it counts as unanswered. */
export const REQUEST_TIMEOUT_MS = 5_000;

// ---- raw HTTP ------------------------------------------------------------------------------

export interface Response {
  status: number;
  headers: Array<[string, string]>;
  body: Buffer;
  /** The response is a stream (SSE, or a 101 upgrade) that was cut after its head. */
  streaming: boolean;
}

export type Outcome =
  { kind: 'response'; response: Response } | { kind: 'closed'; received: Buffer } | { kind: 'timeout'; received: Buffer };

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Parses one complete response from `buf`: the response and its length, undefined if incomplete; throws if malformed. */
export function parseResponse(buf: Buffer, method: string): { response: Response; length: number } | undefined {
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
export function exchange(port: number, request: Buffer, method: string): Promise<Outcome> {
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

export type Header = [string, string];

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

export type BodyMode = 'none' | 'length' | 'chunked';

export interface RawRequest {
  method: string;
  target: string;
  version: string;
  host: boolean;
  authorization: string | undefined;
  headers: Header[];
  body: string | Buffer | undefined;
  mode: BodyMode;
}

export const request: fc.Arbitrary<RawRequest> = fc.record({
  method,
  target,
  version,
  host: fc.oneof({ weight: 10, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  authorization,
  headers: fc.array(extraHeader, { maxLength: 3 }),
  body: fc.option(bodyText, { freq: 2 }).map((b) => b ?? undefined),
  mode: fc.constantFrom<BodyMode>('length', 'length', 'chunked', 'none'),
});

/** The request as bytes; `TOKEN` in the target, the Authorization and header values becomes `token`. */
export function render(r: RawRequest, port: number, token: string): Buffer {
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

export function describeRequest(raw: Buffer): string {
  const text = raw.toString('latin1');
  return JSON.stringify(text.length > 700 ? `${text.slice(0, 500)}…(${text.length} bytes)…${text.slice(-100)}` : text);
}

/** The documented 5xx statuses: 503 (unavailable: broker, shutdown, limits). */
export function statusAllowed(status: number, r: RawRequest): boolean {
  if (status >= 100 && status < 500) return true;
  if (status === 503) return true;
  // A request line that is not HTTP/1.x may get 505 HTTP Version Not Supported from Node itself.
  if (status === 505 && !/^HTTP\/1\.[01]$/.test(r.version)) return true;
  return false;
}

/** Whether getting no response at all is legitimate for this request. */
export function noResponseAllowed(r: RawRequest): boolean {
  // A request line Node cannot read at all may be answered by a plain close.
  return r.method === '' || r.method.includes(' ') || r.version === '' || r.target === '';
}
