/**
 * The shared-cursors demo (web/game.html) in Debian's Chromium against a hub in demo mode: two
 * pages (desktop and 390 px wide) see each other's cursor move, by pointer and by arrow keys; a
 * page that reloads gets the other player's current position at once from the latest-value
 * subscribe (one publication for that player, flagged latest), not a replay of its moves.
 * Screenshots go to test-results/screenshots/ (gitignored).
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCREENSHOTS, startDemoPages, type DemoPages } from './support/browser.js';
import { type TestServer } from './support/harness.js';

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

/** Where `user`'s dot is on `page` (0..1), or undefined when it has none. */
function dotAt(page: Page, user: string): Promise<{ x: number; y: number } | undefined> {
  return page.evaluate((u) => {
    const el = document.querySelector<HTMLElement>(`.dot[data-user="${u}"]`);
    return el ? { x: Number(el.dataset.x), y: Number(el.dataset.y) } : undefined;
  }, user);
}

function waitForDot(page: Page, user: string, x: number, y: number): Promise<unknown> {
  return page.waitForFunction(
    ([u, ex, ey]) => {
      const el = document.querySelector<HTMLElement>(`.dot[data-user="${u as string}"]`);
      return !!el && Math.abs(Number(el.dataset.x) - (ex as number)) < 0.01 && Math.abs(Number(el.dataset.y) - (ey as number)) < 0.01;
    },
    [user, x, y] as const,
    { timeout: 10_000 },
  );
}

describe('shared cursors demo', () => {
  it("two pages see each other's cursor move; a reloaded page gets the current positions at once, not a replay", async () => {
    const errors: string[] = [];
    const ann = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const ben = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    for (const p of [ann, ben]) p.on('pageerror', (e) => errors.push(e.message));
    await ann.goto(`${server.httpUrl}/game.html?name=ann`);
    await ben.goto(`${server.httpUrl}/game.html?name=ben`);
    for (const p of [ann, ben]) await p.waitForSelector('.state[data-state="connected"]');

    // Ann moves the pointer across the board: Ben's page follows.
    const box = (await ann.locator('#board').boundingBox())!;
    for (let i = 1; i <= 10; i++) {
      await ann.mouse.move(box.x + (box.width * i) / 12, box.y + box.height * 0.3);
      await ann.waitForTimeout(40);
    }
    const annAt = (await dotAt(ann, 'ann'))!;
    expect(annAt.x).toBeCloseTo(10 / 12, 1);
    await waitForDot(ben, 'ann', annAt.x, annAt.y);

    // Ben moves with the arrow keys: Ann's page follows.
    await ben.locator('#board').focus();
    for (let i = 0; i < 8; i++) await ben.keyboard.press('ArrowDown');
    const benAt = (await dotAt(ben, 'ben'))!;
    await waitForDot(ann, 'ben', benAt.x, benAt.y);
    // The readout shows frames and incoming updates.
    await ann.waitForFunction(
      () => Number(document.querySelector('#fps')!.textContent) > 0 && Number(document.querySelector('#rate')!.textContent) >= 0,
    );
    await ann.waitForFunction(() => document.querySelector('#latency')!.textContent !== '–');
    // Ben's position is published (at most 4 per second while moving) and acknowledged.
    await ben.waitForFunction(() => {
      const me = (window as unknown as { __game: { me: { x: number; y: number; acked: string } } }).__game.me;
      return me.acked === `${me.x.toFixed(4)},${me.y.toFixed(4)}`;
    });
    await ann.screenshot({ path: `${SCREENSHOTS}game-desktop.png` });
    await ben.screenshot({ path: `${SCREENSHOTS}game-390.png` });

    // Ann reloads: Ben's current position is there from the subscribe itself.
    await ann.reload();
    await ann.waitForSelector('.state[data-state="connected"]');
    await waitForDot(ann, 'ben', benAt.x, benAt.y);
    const stats = await ann.evaluate(
      () => (window as unknown as { __game: { stats: { initialLatest: number; received: number } } }).__game.stats,
    );
    // One latest publication for Ben (he published several while moving), not a replay.
    expect(stats.initialLatest).toBe(1);
    await ann.screenshot({ path: `${SCREENSHOTS}game-desktop-reloaded.png` });
    expect(errors).toEqual([]);
  });
});
