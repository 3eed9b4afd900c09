import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { EventSource } from 'eventsource';
import { afterEach, describe, expect, it } from 'vitest';
import { createHub, type CreateHubOptions, type Hub } from '../src/index.js';
import { signToken } from '../src/auth/token.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { launchChromium } from './support/browser.js';

const secret = 'sse-test-secret-0123456789abcdef-xyz';
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function startHub(extra: Partial<CreateHubOptions> = {}): Promise<{ hub: Hub; port: number; base: string }> {
  const hub = createHub({
    auth: { secret },
    limits: { shutdownSpreadMs: 0 },
    namespaces: { notifications: {} },
    ...extra,
  });
  const { port, httpUrl } = await hub.listen(0, '127.0.0.1');
  cleanups.push(() => hub.close());
  return { hub, port, base: httpUrl };
}

function until<T>(check: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = (): void => {
      const v = check();
      if (v !== undefined && v !== false) return resolve(v);
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(poll, 10);
    };
    poll();
  });
}

/** Reads a raw SSE response until `stop` says enough, returning the text. */
async function readStream(res: Response, stop: (text: string) => boolean): Promise<string> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const deadline = Date.now() + 10_000;
  while (!stop(text) && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  return text;
}

describe('SSE transport', () => {
  it('streams publications to the eventsource client with the SSE headers', async () => {
    const { hub, base } = await startHub();
    const token = await signToken({ secret, user: 'alice' });
    const head = await fetch(`${base}/sse?channel=news`, { headers: { authorization: `Bearer ${token}` } });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(head.headers.get('cache-control')).toContain('no-cache');
    expect(head.headers.get('x-accel-buffering')).toBe('no');
    await head.body!.cancel();

    const es = new EventSource(`${base}/sse?channel=news&token=${token}`);
    cleanups.push(() => es.close());
    const got: unknown[] = [];
    es.addEventListener('news', (e) => got.push(JSON.parse(e.data)));
    await new Promise((resolve) => es.addEventListener('subscribed', resolve));
    await hub.publish('news', { n: 1 });
    await hub.publish('news', { n: 2 });
    await until(() => got.length === 2, 'two publications');
    expect(got).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('recovers every publication missed while cut off, once and in order, through Last-Event-ID', async () => {
    const { hub, port } = await startHub({ sse: { retryMs: 300 } });
    const proxy = await new TcpProxy(port).start();
    cleanups.push(() => proxy.close());
    const token = await signToken({ secret, user: 'alice' });
    await hub.publish('feed', { n: -1 }); // a position before the stream opens
    const es = new EventSource(`http://127.0.0.1:${proxy.port}/sse?channel=feed&channel=other&token=${token}`);
    cleanups.push(() => es.close());
    const got: number[] = [];
    const failures: string[] = [];
    let opens = 0;
    es.addEventListener('feed', (e) => got.push((JSON.parse(e.data) as { n: number }).n));
    es.addEventListener('recovery-failed', (e) => failures.push(e.data));
    es.addEventListener('subscribed', () => (opens += 1));
    await until(() => opens === 1, 'first stream');
    await hub.publish('feed', { n: 0 });
    await until(() => got.length === 1, 'live publication');

    proxy.cutAll();
    for (let n = 1; n <= 50; n++) await hub.publish('feed', { n });
    await until(() => opens === 2 && got.length === 51, 'reconnect and recovery');
    expect(got).toEqual(Array.from({ length: 51 }, (_, i) => i));
    expect(failures).toEqual([]);
  });

  it('ignores a forged, foreign or oversized Last-Event-ID safely: recovery-failed, no data leaked', async () => {
    const { hub, base } = await startHub();
    const token = await signToken({ secret, user: 'alice' });
    await hub.publish('secret-room', { leak: true });
    const own = await hub.publish('mine', { n: 1 });
    const foreign = await hub.publish('secret-room', { leak: true });
    // Past Node's header limit the request is refused outright.
    const huge = await fetch(`${base}/sse?channel=mine`, {
      headers: { authorization: `Bearer ${token}`, 'last-event-id': 'x'.repeat(100_000) },
    });
    expect(huge.status).toBe(431);
    const ids = [
      `1:${own.epoch}.${'1'.repeat(9000)}`, // over our own bound
      `1:${foreign.epoch}.0`, // another channel's epoch
      `1:${own.epoch}.999999999`, // beyond the top
      `1:${own.epoch}.-1`,
      '1:../../etc.1',
      `1:${own.epoch}.0,extra.1`, // wrong number of channels
    ];
    for (const id of ids) {
      const res = await fetch(`${base}/sse?channel=mine`, { headers: { authorization: `Bearer ${token}`, 'last-event-id': id } });
      expect(res.status).toBe(200);
      const text = await readStream(res, (t) => t.includes('event: subscribed'));
      expect(text).toContain('event: recovery-failed');
      expect(text).not.toContain('leak');
      expect(text).not.toMatch(/event: mine\n/);
    }
    // A genuine id recovers.
    const res = await fetch(`${base}/sse?channel=mine`, {
      headers: { authorization: `Bearer ${token}`, 'last-event-id': `1:${own.epoch}.0` },
    });
    const text = await readStream(res, (t) => t.includes('event: subscribed'));
    expect(text).toContain('event: mine\ndata: {"n":1}');
    expect(text).not.toContain('recovery-failed');
  });

  it('applies the same auth and permission checks as WebSocket', async () => {
    const { base } = await startHub({ sse: { cookieName: 'sb_token' } });
    const alice = await signToken({ secret, user: 'alice' });
    expect((await fetch(`${base}/sse?channel=news`)).status).toBe(401);
    expect((await fetch(`${base}/sse?channel=news&token=garbage`)).status).toBe(401);
    const expired = await signToken({ secret, user: 'alice', ttl: -10 });
    expect((await fetch(`${base}/sse?channel=news&token=${expired}`)).status).toBe(401);
    expect((await fetch(`${base}/sse?channel=notifications:%23bob&token=${alice}`)).status).toBe(403);
    expect((await fetch(`${base}/sse?channel=nope:x&token=${alice}`)).status).toBe(404);
    expect((await fetch(`${base}/sse?token=${alice}`)).status).toBe(400);
    const viaCookie = await fetch(`${base}/sse?channel=notifications:%23alice`, { headers: { cookie: `a=b; sb_token=${alice}` } });
    expect(viaCookie.status).toBe(200);
    await viaCookie.body!.cancel();
  });

  it('answers allowed origins with CORS (never a wildcard) and refuses foreign ones', async () => {
    const { base } = await startHub({ allowedOrigins: ['https://app.example'], sse: { credentials: true } });
    const token = await signToken({ secret, user: 'alice' });
    const ok = await fetch(`${base}/sse?channel=news&token=${token}`, { headers: { origin: 'https://app.example' } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(ok.headers.get('access-control-allow-credentials')).toBe('true');
    await ok.body!.cancel();
    const foreign = await fetch(`${base}/sse?channel=news&token=${token}`, { headers: { origin: 'https://evil.example' } });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    expect(() => createHub({ auth: { secret }, allowedOrigins: ['*'], sse: { credentials: true } })).toThrow(/sse\.credentials/);
  });

  it('sends retry and keep-alive comments', async () => {
    const { base } = await startHub({ sse: { keepAliveMs: 100, retryMs: 1234 } });
    const token = await signToken({ secret, user: 'alice' });
    const res = await fetch(`${base}/sse?channel=news&token=${token}`);
    const text = await readStream(res, (t) => t.includes(': keep-alive'));
    expect(text).toContain('retry: 1234');
    expect(text).toContain(': keep-alive');
  });

  it("reaches Chromium's own EventSource", async () => {
    const web = mkdtempSync(join(tmpdir(), 'sb-sse-web-'));
    cleanups.push(() => rmSync(web, { recursive: true, force: true }));
    const token = await signToken({ secret, user: 'alice' });
    writeFileSync(
      join(web, 'index.html'),
      `<!doctype html><script>
        window.got = [];
        const es = new EventSource('/sse?channel=ticker&token=${token}');
        es.addEventListener('subscribed', () => { window.ready = true; });
        es.addEventListener('ticker', (e) => window.got.push(JSON.parse(e.data)));
      </script>`,
    );
    const { hub, base } = await startHub({ webDir: web });
    const browser = await launchChromium();
    cleanups.push(() => browser.close());
    const page = await browser.newPage();
    await page.goto(`${base}/`);
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
    await hub.publish('ticker', { price: 42 });
    await page.waitForFunction(() => (window as unknown as { got: unknown[] }).got.length === 1);
    expect(await page.evaluate(() => (window as unknown as { got: unknown[] }).got)).toEqual([{ price: 42 }]);
  });
});

describe('SSE limits', () => {
  it('drops a stream that stops reading, while other streams keep receiving, and applies the connection cap', async () => {
    const { hub, port, base } = await startHub({ limits: { maxQueueBytes: 256 * 1024, maxConnections: 3 } });
    const token = await signToken({ secret, user: 'alice' });
    // A raw socket that sends the request and never reads a byte of the answer.
    const stalled = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => stalled.once('connect', () => resolve()));
    stalled.write(`GET /sse?channel=firehose&token=${token} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    stalled.pause();
    cleanups.push(() => stalled.destroy());
    const reader = new EventSource(`${base}/sse?channel=firehose&token=${token}`);
    cleanups.push(() => reader.close());
    let got = 0;
    let opened = 0;
    reader.addEventListener('firehose', () => (got += 1));
    reader.addEventListener('subscribed', () => (opened += 1));
    await until(() => opened === 1, 'the reading stream');
    await until(() => hub.stats().connections === 2, 'both streams');

    // The cap: a third stream is fine, a fourth is refused before the stream starts.
    const third = await fetch(`${base}/sse?channel=x&token=${token}`);
    expect(third.status).toBe(200);
    const fourth = await fetch(`${base}/sse?channel=x&token=${token}`);
    expect(fourth.status).toBe(503);
    await third.body!.cancel();

    // Enough to fill the stalled socket's kernel buffers, paced so the reading stream keeps up.
    const payload = 'x'.repeat(8_000);
    let published = 0;
    for (let i = 0; i < 4000 && hub.stats().connections > 1; i++) {
      await hub.publish('firehose', { i, payload });
      published += 1;
      await new Promise((r) => (i % 10 === 9 ? setTimeout(r, 1) : setImmediate(r)));
    }
    await until(() => hub.stats().connections === 1, 'the stalled stream to be dropped');
    await until(() => got === published, 'every publication at the reading stream');
    expect(opened).toBe(1);
    expect(hub.stats().queuedBytes).toBeLessThan(2 * 256 * 1024);
  });
});
