import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer } from './support/harness.js';
import { startDemoPages, type DemoPages } from './support/browser.js';

/** The demo pages of web/, in Debian's Chromium, against a hub in demo mode (as `npm start` runs it). */
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

describe('demo pages', () => {
  it('chat: two people see each other, typing, and messages, and history on reload', async () => {
    const ann = await browser.newPage();
    const ben = await browser.newPage();
    const errors: string[] = [];
    for (const p of [ann, ben]) p.on('pageerror', (e) => errors.push(e.message));
    await ann.goto(`${server.httpUrl}/chat.html?name=ann`);
    await ben.goto(`${server.httpUrl}/chat.html?name=ben`);
    for (const p of [ann, ben]) {
      await p.waitForSelector('.state[data-state="connected"]');
      await p.waitForFunction(() => document.querySelectorAll('#people li').length === 2);
    }
    await ann.fill('#text', 'hello b');
    await ben.waitForFunction(() => document.querySelector('#typing')!.textContent!.includes('ann is typing'));
    await ann.press('#text', 'Enter');
    await ben.waitForFunction(() =>
      [...document.querySelectorAll('#messages li')].some(
        (li) =>
          li.matches('.msg') && li.querySelector('.who')!.textContent === 'ann' && li.querySelector('.text')!.textContent === 'hello b',
      ),
    );
    await ann.waitForFunction(() =>
      [...document.querySelectorAll('#messages li')].some(
        (li) =>
          li.matches('.msg') && li.querySelector('.who')!.textContent === 'ann' && li.querySelector('.text')!.textContent === 'hello b',
      ),
    );

    const again = await browser.newPage();
    await again.goto(`${server.httpUrl}/chat.html?name=cat`);
    await again.waitForFunction(() =>
      [...document.querySelectorAll('#messages li')].some(
        (li) =>
          li.matches('.msg') && li.querySelector('.who')!.textContent === 'ann' && li.querySelector('.text')!.textContent === 'hello b',
      ),
    );
    expect(errors).toEqual([]);
  });

  it('dashboard: the server numbers arrive every second', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.httpUrl}/dashboard.html`);
    await page.waitForSelector('.state[data-state="connected"]');
    await page.waitForFunction(() => Number(document.querySelector('[data-metric="connections"]')!.textContent) >= 1, undefined, {
      timeout: 10_000,
    });
    expect(await page.textContent('#cards')).toContain('memory (RSS, MB)');
  });

  it('the landing page links both', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.httpUrl}/`);
    expect(await page.locator('a[href="/chat.html"]').count()).toBeGreaterThan(0);
    expect(await page.locator('a[href="/dashboard.html"]').count()).toBeGreaterThan(0);
  });
});
