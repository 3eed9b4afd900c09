import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { signToken } from '../../src/auth/token.js';
import { REPO_ROOT } from '../proc/child.js';
import type { RunContext } from './context.js';

export interface ProxyBenchResult {
  connectsPerSecJwt: number;
  connectsPerSecProxy: number;
  /** Publish-to-delivery latency, ms, over every subscriber of the channel, one publication at a time. */
  p50MsPlain: number;
  p99MsPlain: number;
  p50MsProxy: number;
  p99MsProxy: number;
  publications: number;
  subscribers: number;
}

/** Sizes per mode: connects, subscribers, publications. */
const SIZES = { full: [3000, 100, 2000], quick: [400, 50, 300], tiny: [20, 5, 20] } as const;
/** Each variant publishes for at most this long (a busy machine gets fewer samples, not a longer run). */
const LATENCY_BUDGET_MS = 8_000;
const CONCURRENCY = 50;

function start(file: string, args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`${file} exited (${code})`)));
  });
}

/** Opens a connection and sends connect; resolves once it is connected. */
function open(url: string, connect: object, headers: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false });
    ws.once('error', reject);
    ws.once('open', () => ws.send(JSON.stringify({ id: 1, method: 'connect', params: connect })));
    ws.on('message', function first(data: Buffer) {
      const text = data.toString();
      if (!text.includes('"id":1')) return;
      ws.off('message', first);
      if (text.includes('"error"')) reject(new Error(text));
      else resolve(ws);
    });
  });
}

async function connectRate(n: number, one: (i: number) => Promise<WebSocket>): Promise<number> {
  const sockets: WebSocket[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) sockets.push(await one(next++));
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  for (const ws of sockets) ws.terminate();
  return Math.round(n / elapsed);
}

/**
 * Publishes up to `count` times from `publisher`, one at a time (the next once every subscriber
 * has the last, or after 2 s), within LATENCY_BUDGET_MS, and records each delivery's delay.
 * One at a time, because one connection's publishes run in order: a faster rate than the
 * proxy round trip would measure the queue, not the proxy.
 */
async function latency(publisher: WebSocket, subscribers: WebSocket[], channel: string, count: number): Promise<number[]> {
  const samples: number[] = [];
  const onMessage = (data: Buffer): void => {
    const now = performance.now();
    for (const line of data.toString().split('\n')) {
      if (!line.includes(`"${channel}"`)) continue;
      const sent = /"sent":([\d.]+)/.exec(line)?.[1];
      if (sent !== undefined) samples.push(now - Number(sent));
    }
  };
  for (const ws of subscribers) {
    ws.send(JSON.stringify({ id: 2, method: 'subscribe', params: { channel } }));
    ws.on('message', onMessage);
  }
  await new Promise((r) => setTimeout(r, 300));
  const stopAt = Date.now() + LATENCY_BUDGET_MS;
  for (let i = 0; i < count && Date.now() < stopAt; i++) {
    const want = samples.length + subscribers.length;
    publisher.send(JSON.stringify({ id: 10 + i, method: 'publish', params: { channel, data: { sent: performance.now(), text: 'x'.repeat(80) } } }));
    const deadline = Date.now() + 2_000;
    while (samples.length < want && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  }
  for (const ws of subscribers) ws.off('message', onMessage);
  return samples;
}

function percentile(sorted: number[], p: number): number {
  return Math.round((sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0) * 100) / 100;
}

/**
 * Proxy hooks: connects/s through the connect proxy against connects/s with a JWT, on one node,
 * and publish-to-delivery latency with and without the publish proxy, side by side. The backend
 * is a tiny Node server on loopback; load is generated in this process (indicative figures).
 */
export async function runProxy(ctx: RunContext): Promise<ProxyBenchResult> {
  const [connects, subs, pubs] = SIZES[ctx.cfg.mode];
  const proxySecret = randomBytes(16).toString('hex');
  const backend = await start('bench/proxy/backend.ts', [proxySecret]);
  const hub = await start('bench/proxy/hub.ts', [ctx.secret, proxySecret, `http://127.0.0.1:${backend.port}`]);
  const url = `ws://127.0.0.1:${hub.port}/ws`;
  try {
    ctx.progress.step('proxy · connects with JWT');
    const tokens = await Promise.all(Array.from({ length: connects }, (_, i) => signToken({ secret: ctx.secret, user: `j${i}`, ttl: 3600 })));
    const jwt = await connectRate(connects, (i) => open(url, { token: tokens[i] }, {}));
    ctx.progress.step('proxy · connects through the connect proxy');
    const proxy = await connectRate(connects, (i) => open(url, {}, { cookie: `session=p${i}` }));
    ctx.progress.step('proxy · publish latency');
    const token = await signToken({ secret: ctx.secret, user: 'pub', ttl: 3600 });
    const publisher = await open(url, { token }, {});
    const receivers = await Promise.all(Array.from({ length: subs }, (_, i) => open(url, { token: tokens[i % tokens.length] }, {})));
    publisher.send(JSON.stringify({ id: 3, method: 'subscribe', params: { channel: 'plain:room' } }));
    publisher.send(JSON.stringify({ id: 4, method: 'subscribe', params: { channel: 'proxied:room' } }));
    const plain = (await latency(publisher, receivers, 'plain:room', pubs)).sort((a, b) => a - b);
    const proxied = (await latency(publisher, receivers, 'proxied:room', pubs)).sort((a, b) => a - b);
    for (const ws of [publisher, ...receivers]) ws.terminate();
    const result: ProxyBenchResult = {
      connectsPerSecJwt: jwt,
      connectsPerSecProxy: proxy,
      p50MsPlain: percentile(plain, 50),
      p99MsPlain: percentile(plain, 99),
      p50MsProxy: percentile(proxied, 50),
      p99MsProxy: percentile(proxied, 99),
      publications: Math.floor(Math.min(plain.length, proxied.length) / subs),
      subscribers: subs,
    };
    ctx.notes.push(
      `proxy: connects/s with JWT ${jwt}, through the connect proxy ${proxy} (${(proxy / jwt).toFixed(2)}×); ` +
        `publish-to-delivery to ${subs} subscribers, p50/p99: ${result.p50MsPlain}/${result.p99MsPlain} ms without the publish proxy, ` +
        `${result.p50MsProxy}/${result.p99MsProxy} ms with it (one publication at a time; ${plain.length / subs} and ${proxied.length / subs} publications)`,
    );
    return result;
  } finally {
    hub.child.kill('SIGKILL');
    backend.child.kill('SIGKILL');
  }
}
