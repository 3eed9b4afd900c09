import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { DEMO_NAMESPACES, startDemo } from '../../src/demo/demo.js';
import { closeAllServers, createTestServer, TEST_SECRET, type TestServer } from './harness.js';

/** Debian's Chromium (apt; never a downloaded build), headless, with no background traffic. */
export const CHROMIUM = '/usr/bin/chromium';

/** `extraArgs`: more switches, e.g. `--host-resolver-rules=…` to map a name to loopback. */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...extraArgs,
    ],
  });
}

/** Where every browser test saves its screenshots (gitignored). */
export const SCREENSHOTS = fileURLToPath(new URL('../../test-results/screenshots/', import.meta.url));

/** The demo pages of web/ served by a test hub in demo mode (as `npm start` runs them), and a Chromium to open them in. */
export interface DemoPages {
  server: TestServer;
  browser: Browser;
  close(): Promise<void>;
}

export async function startDemoPages(): Promise<DemoPages> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const server = await createTestServer({
    webDir: fileURLToPath(new URL('../../web/', import.meta.url)),
    namespaces: DEMO_NAMESPACES as never,
  });
  const demo = startDemo(server.hub, TEST_SECRET);
  server.hub.use((req, res) => demo.handle(req, res));
  const browser = await launchChromium();
  return {
    server,
    browser,
    async close() {
      demo.close();
      try {
        await browser.close();
      } finally {
        await closeAllServers();
      }
    },
  };
}
