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
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../src/index.js';
import {
  describeRequest,
  exchange,
  noResponseAllowed,
  render,
  request,
  REQUEST_TIMEOUT_MS,
  statusAllowed,
  type Outcome,
  type RawRequest,
} from './support/fuzz-http-requests.js';
import { TEST_API_KEY, TEST_SECRET } from './support/harness.js';
import { killProcesses, startHubProcess, type HubProcess } from './support/processes.js';
import { ProtocolClient } from './support/protocol-client.js';

const RUNS = 3_000;
/** Give up (and fail) after this many crashes; each one costs a restart. */
const MAX_CRASHES = 3;

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

// ---- the property --------------------------------------------------------------------------

async function checkRequest(r: RawRequest): Promise<void> {
  const port = hub.port;
  const raw = render(r, port, token);
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
    // (The fuzz itself may publish to chat:sentinel through the API: wait for this very value.)
    const after = `fuzz-${seed}`;
    hub.publish('chat:sentinel', { after });
    const pub = await watcher.waitFor(
      (m) => m.push === 'pub' && m.channel === 'chat:sentinel' && (m.data as { after?: unknown } | null)?.after === after,
    );
    expect(pub.data).toEqual({ after });
    expect(watcher.isOpen).toBe(true);
  }, 60_000);
});
