import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../src/auth/token.js';
import { SwitchboardClient } from '../src/client/index.js';
import { createHub, type Hub } from '../src/index.js';
import { TEST_SECRET } from './support/harness.js';
import { waitFor } from './support/processes.js';
import { CHROMIUM, launchChromium } from './support/browser.js';

/**
 * The browser bundle (dist/browser/switchboard-client.js, served at /client.js) in a real
 * Chromium: a page from the hub imports it, subscribes, and receives a publication from Node.
 */
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BUNDLE = join(ROOT, 'dist/browser/switchboard-client.js');

let hub: Hub;
let httpUrl: string;
let wsUrl: string;
let browser: Browser;
let webDir: string;
const clients: SwitchboardClient[] = [];

beforeAll(async () => {
  // Build the bundle from the current source (`npm run build` does it too).
  execFileSync(process.execPath, [join(ROOT, 'scripts/bundle-client.mjs')], { cwd: ROOT, stdio: 'pipe' });
  await waitFor(() => existsSync(CHROMIUM), `${CHROMIUM} to be installed`, 25_000);
  webDir = mkdtempSync(join(tmpdir(), 'sb-client-web-'));
  writeFileSync(
    join(webDir, 'index.html'),
    '<!doctype html><meta charset="utf-8"><title>client test</title>' +
      '<script type="module">import * as sb from "/client.js"; window.sb = sb; window.sbLoaded = true;</script>',
  );
  hub = createHub({
    auth: { secret: TEST_SECRET },
    webDir,
    limits: { shutdownSpreadMs: 0, shutdownTimeoutMs: 2_000 },
    namespaces: { chat: {} },
  });
  ({ httpUrl, url: wsUrl } = await hub.listen(0, '127.0.0.1'));
  browser = await launchChromium();
}, 30_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await browser?.close();
  await hub?.close();
  if (webDir) rmSync(webDir, { recursive: true, force: true });
});

describe('client SDK in a browser', () => {
  it('the bundle holds no ws (Node) code', () => {
    const text = readFileSync(BUNDLE, 'utf8');
    expect(text).not.toMatch(/permessage-deflate|Sec-WebSocket-Key|require\(["']ws["']\)|import\(["']ws["']\)/);
  });

  it('loads /client.js from the hub, subscribes, and receives a publication sent from Node (and publishes back)', async () => {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(`${httpUrl}/index.html`);
    await page.waitForFunction(() => (window as unknown as { sbLoaded?: boolean }).sbLoaded === true, undefined, { timeout: 10_000 });

    const token = await signToken({ secret: TEST_SECRET, user: 'browser-user', ttl: 3600 });
    // A relative URL: the client resolves it against the page (ws://127.0.0.1:PORT/ws).
    const state = await page.evaluate(async (token) => {
      const w = window as unknown as { sb: typeof import('../src/client/index.js'); got: unknown[]; sub: unknown; client: unknown };
      const client = new w.sb.SwitchboardClient('/ws', { token });
      w.got = [];
      const sub = client.subscribe('chat:browser', { onPublication: (p: unknown) => w.got.push(p) });
      w.sub = sub;
      client.connect();
      await sub.ready(10_000);
      w.client = client;
      return { state: client.state, user: client.user, url: client.urls[0] };
    }, token);
    expect(state).toEqual({ state: 'connected', user: 'browser-user', url: wsUrl });

    await hub.publish('chat:browser', { hello: 'from node' });
    await page.waitForFunction(() => (window as unknown as { got: unknown[] }).got.length === 1, undefined, { timeout: 10_000 });
    const got = await page.evaluate(() => (window as unknown as { got: unknown[] }).got);
    expect(got).toEqual([{ channel: 'chat:browser', offset: 1, data: { hello: 'from node' }, recovered: false }]);

    // And the other way: the browser publishes, a Node client receives.
    const node = new SwitchboardClient(wsUrl, { token: await signToken({ secret: TEST_SECRET, user: 'node-user', ttl: 3600 }) });
    clients.push(node);
    const fromBrowser: unknown[] = [];
    const sub = node.subscribe('chat:browser', { onPublication: (p) => fromBrowser.push(p.data) });
    node.connect();
    await sub.ready(10_000);
    const position = await page.evaluate(() =>
      (window as unknown as { sub: { publish(d: unknown): Promise<unknown> } }).sub.publish({ hello: 'from the browser' }),
    );
    expect(position).toMatchObject({ offset: 2 });
    await waitFor(() => fromBrowser.length === 1, 'the browser publication in Node');
    expect(fromBrowser).toEqual([{ hello: 'from the browser' }]);
    expect(pageErrors).toEqual([]);
    await page.close();
  });
});
