import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCREENSHOTS, startDemoPages, type DemoPages } from './support/browser.js';
import { TEST_API_KEY, type TestServer } from './support/harness.js';

/** The collaborative editor demo (web/collab.html) in Debian's Chromium; needs `npm run build` (the /collab-client.js bundle). */
let pages: DemoPages;
let browser: Browser;
let server: TestServer;

beforeAll(async () => {
  pages = await startDemoPages();
  ({ browser, server } = pages);
});

afterAll(async () => {
  await pages?.close();
});

const value = (p: Page): Promise<string> => p.inputValue('#text');

describe('collaborative editor demo', () => {
  it('two pages type at the same time: identical text, and each shows the other’s cursor and name', async () => {
    const ann = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const ben = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const errors: string[] = [];
    for (const p of [ann, ben]) p.on('pageerror', (e) => errors.push(e.message));
    const doc = `docs:browser-${Date.now()}`;
    await ann.goto(`${server.httpUrl}/collab.html?name=ann&doc=${doc}`);
    await ben.goto(`${server.httpUrl}/collab.html?name=ben&doc=${doc}`);
    for (const p of [ann, ben]) await p.waitForSelector('.state[data-state="connected"]');
    await ann.click('#text');
    await ben.click('#text');
    // Both type at once, each its own line, key by key.
    await Promise.all([
      ann.keyboard.type('Ann writes this line.\n', { delay: 15 }),
      ben.keyboard.type('Ben types over here. ', { delay: 15 }),
    ]);
    await ann.waitForFunction(() => {
      const t = (document.querySelector('#text') as HTMLTextAreaElement).value;
      return t.includes('Ann writes this line.') && t.includes('Ben types over here.');
    });
    await ben.waitForFunction(() => {
      const t = (document.querySelector('#text') as HTMLTextAreaElement).value;
      return t.includes('Ann writes this line.') && t.includes('Ben types over here.');
    });
    const [a, b] = [await value(ann), await value(ben)];
    expect(a).toBe(b);
    expect(a.length).toBe('Ann writes this line.\n'.length + 'Ben types over here. '.length);
    // Each sees the other's caret with the name.
    await ann.waitForFunction(() => [...document.querySelectorAll('.caret .label')].some((l) => l.textContent === 'ben'));
    await ben.waitForFunction(() => [...document.querySelectorAll('.caret .label')].some((l) => l.textContent === 'ann'));
    expect(await ann.locator('#editors li').count()).toBe(2);
    // The server's copy is the same text.
    const res = await fetch(`${server.httpUrl}/api/documents/${doc}?text=text`, { headers: { authorization: `apikey ${TEST_API_KEY}` } });
    expect(((await res.json()) as { text: { text: string } }).text.text).toBe(a);
    // At 390 px nothing overflows sideways.
    expect(await ben.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await ann.screenshot({ path: `${SCREENSHOTS}collab-desktop.png` });
    await ben.screenshot({ path: `${SCREENSHOTS}collab-390.png`, fullPage: true });
    expect(errors).toEqual([]);
  }, 60_000);
});
