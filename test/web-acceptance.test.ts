import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './support/browser.js';
import { cleanEnv, startServe, type ServeProcess } from './support/cli-serve.js';

/**
 * The acceptance, in Debian's Chromium against `switchboard serve --demo` as shipped:
 * the admin UI behind its login, the chat as two users, no sideways scrolling at 390 px, and
 * screenshots of admin, chat and dashboard (desktop and 390 px) in test-results/screenshots/.
 */
const SHOTS = join(import.meta.dirname, '..', 'test-results', 'screenshots');
const PASSWORD = 'correct horse battery staple';
const cwd = mkdtempSync(join(tmpdir(), 'sb-web-'));
const env = cleanEnv({ SWITCHBOARD_ADMIN_PASSWORD: PASSWORD, SWITCHBOARD_DATA_DIR: join(cwd, 'data') });
let serve: ServeProcess;
let browser: Browser;
let base: string;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  serve = await startServe(['--demo', '--port', '0', '--host', '127.0.0.1'], cwd, env);
  base = serve.httpUrl;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await serve?.stop();
  rmSync(cwd, { recursive: true, force: true });
});

async function context(width = 1280, height = 860): Promise<BrowserContext> {
  const ctx = await browser.newContext({ viewport: { width, height } });
  contexts.push(ctx);
  return ctx;
}

async function page(ctx: BrowserContext, errors: string[] = []): Promise<Page> {
  const p = await ctx.newPage();
  p.on('pageerror', (e) => errors.push(e.message));
  return p;
}

function apiKey(): string {
  return (JSON.parse(readFileSync(join(cwd, 'data', 'secrets.json'), 'utf8')) as { apiKey: string }).apiKey;
}

async function login(p: Page): Promise<void> {
  await p.goto(`${base}/admin`);
  await p.fill('#password', PASSWORD);
  await p.click('#login button');
  await p.waitForSelector('#card-connections');
}

const cardValue = (p: Page, key: string): Promise<number> => p.evaluate((k) => Number(document.querySelector(`#card-${k}`)!.textContent), key);
const waitCard = (p: Page, key: string, n: number): Promise<unknown> =>
  p.waitForFunction(([k, v]) => document.querySelector(`#card-${k}`)!.textContent === String(v), [key, n] as const, { timeout: 15_000 });

const DATA_ENDPOINTS: Array<[string, string]> = [
  ['GET', 'overview'],
  ['GET', 'connections'],
  ['GET', 'session'],
  ['GET', 'channels'],
  ['GET', 'info'],
  ['GET', 'history?channel=chat:lobby'],
  ['GET', 'presence?channel=chat:lobby'],
  ['GET', 'status?user=ann'],
  ['GET', 'tail?channel=chat:lobby'],
  ['POST', 'publish'],
  ['POST', 'broadcast'],
  ['POST', 'disconnect'],
  ['POST', 'unsubscribe'],
];

describe('admin UI', () => {
  it('without credentials serves only the login page; every data endpoint answers 401', async () => {
    const res = await fetch(`${base}/admin`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('id="login"');
    expect(html).not.toContain('id="cards"');
    for (const [method, path] of DATA_ENDPOINTS) {
      const r = await fetch(`${base}/admin/api/${path}`, {
        method,
        ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{"channel":"chat:lobby","data":1}' } : {}),
      });
      expect(r.status, path).toBe(401);
      expect(((await r.json()) as { error: { code: number } }).error.code, path).toBe(101);
    }
    // A wrong password, a cross-site login and a form-encoded login are refused.
    const post = (body: string, headers: Record<string, string>) => fetch(`${base}/admin/login`, { method: 'POST', headers, body });
    expect((await post(JSON.stringify({ password: 'nope' }), { 'content-type': 'application/json' })).status).toBe(401);
    const cross = await post(JSON.stringify({ password: PASSWORD }), { 'content-type': 'application/json', origin: 'http://evil.example' });
    expect(cross.status).toBe(403);
    expect(cross.headers.get('set-cookie')).toBeNull();
    expect((await post(`password=${PASSWORD}`, { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(400);

    const p = await page(await context());
    await p.goto(`${base}/admin`);
    expect(await p.locator('#password').count()).toBe(1);
    expect(await p.locator('#cards').count()).toBe(0);
  });

  it('a login gives an HttpOnly SameSite=Strict expiring cookie; state changes need its CSRF token', async () => {
    for (const password of [PASSWORD, apiKey()]) {
      const res = await fetch(`${base}/admin/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password }) });
      expect(res.status).toBe(200);
      const cookie = res.headers.get('set-cookie')!;
      expect(cookie).toMatch(/^sb_admin=[\w-]{40,};/);
      expect(cookie).toContain('HttpOnly');
      expect(cookie).toContain('SameSite=Strict');
      expect(cookie).toContain('Path=/admin');
      expect(cookie).toMatch(/Max-Age=\d+/);
      const { csrf } = (await res.json()) as { csrf: string };
      const session = cookie.split(';')[0]!;
      const publish = (headers: Record<string, string>) =>
        fetch(`${base}/admin/api/publish`, {
          method: 'POST',
          headers: { cookie: session, 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ channel: 'chat:lobby', data: { hello: 'world' } }),
        });
      const noToken = await publish({});
      expect(noToken.status).toBe(403);
      expect(((await noToken.json()) as { error: { code: number } }).error.code).toBe(136);
      expect((await publish({ 'x-csrf-token': 'wrong' })).status).toBe(403);
      expect((await publish({ 'x-csrf-token': csrf, origin: 'http://evil.example' })).status).toBe(403);
      const ok = await publish({ 'x-csrf-token': csrf });
      expect(ok.status).toBe(200);
      expect(await ok.json()).toMatchObject({ offset: expect.any(Number), epoch: expect.any(String) });
      const overview = await fetch(`${base}/admin/api/overview`, { headers: { cookie: session } });
      expect(overview.status).toBe(200);
      expect(await overview.json()).toMatchObject({ version: expect.any(String), totals: { nodes: 1 }, redis: null });
      // Logging out ends the session.
      await fetch(`${base}/admin/logout`, { method: 'POST', headers: { cookie: session, 'x-csrf-token': csrf } });
      expect((await fetch(`${base}/admin/api/overview`, { headers: { cookie: session } })).status).toBe(401);
    }
  });

  it('the overview follows clients connecting and disconnecting; the disconnect action removes a live connection', async () => {
    const admin = await page(await context());
    await login(admin);
    const before = await cardValue(admin, 'connections');
    const clients = await context();
    const tabs = [await page(clients), await page(clients)];
    await tabs[0]!.goto(`${base}/chat.html?name=visitor1`);
    await tabs[1]!.goto(`${base}/chat.html?name=victim`);
    for (const t of tabs) await t.waitForSelector('.state[data-state="connected"]');
    await waitCard(admin, 'connections', before + 2);
    await tabs[0]!.close();
    await waitCard(admin, 'connections', before + 1);

    await admin.click('a[data-tab="users"]');
    const row = admin.locator('#user-list tr', { hasText: 'victim' });
    await row.waitFor();
    expect(await row.textContent()).toContain('websocket');
    expect(await row.textContent()).toContain('chat:lobby');
    await row.locator('button', { hasText: 'Disconnect' }).click();
    await tabs[1]!.waitForSelector('.state[data-state="disconnected"]', { timeout: 10_000 });
    await admin.waitForFunction(() => !document.querySelector('#user-list')!.textContent!.includes('victim'), undefined, { timeout: 10_000 });
    await admin.click('a[data-tab="overview"]');
    await waitCard(admin, 'connections', before);
  });
});

describe('chat demo', () => {
  it('two tabs with two names see each other’s presence, typing, read receipts and messages; any JSON renders', async () => {
    const errors: string[] = [];
    const ctx = await context();
    const ann = await page(ctx, errors);
    const ben = await page(ctx, errors);
    await ann.goto(`${base}/chat.html?name=ann`);
    await ben.goto(`${base}/chat.html?name=ben`);
    for (const p of [ann, ben]) {
      await p.waitForSelector('.state[data-state="connected"]');
      await p.waitForFunction(() => {
        const names = [...document.querySelectorAll('#people li')].map((li) => li.textContent);
        return names.some((n) => n?.startsWith('ann')) && names.some((n) => n?.startsWith('ben'));
      });
    }
    await ann.fill('#text', 'hello ben');
    await ben.waitForFunction(() => document.querySelector('#typing')!.textContent!.includes('ann is typing'));
    await ann.press('#text', 'Enter');
    const annMessage = (p: Page) =>
      p.waitForFunction(() => [...document.querySelectorAll('#messages li.msg')].find((li) => li.textContent!.includes('hello ben') && li.querySelector('time')!.textContent));
    await annMessage(ben);
    await annMessage(ann);
    // Ben's tab read it: Ann sees the receipt under her message.
    await ann.waitForFunction(() =>
      [...document.querySelectorAll('#messages li.mine')].some((li) => li.querySelector('.receipt')!.textContent!.includes('read by ben')),
    );
    // Whatever JSON a publisher sends shows as JSON.
    const res = await fetch(`${base}/api/publish`, {
      method: 'POST',
      headers: { authorization: `apikey ${apiKey()}` },
      body: JSON.stringify({ channel: 'chat:lobby', data: { hello: 'world' } }),
    });
    expect(res.status).toBe(200);
    await ben.waitForFunction(() => [...document.querySelectorAll('#messages pre.json')].some((pre) => pre.textContent!.includes('"hello": "world"')));
    // Ben's visible tab marks what it shows as read.
    await ben.waitForFunction(() => document.querySelector('#unread')!.textContent === '0');
    expect(errors).toEqual([]);
  });

  it('without a name it shows the picker, and the chosen name goes in ?name=', async () => {
    const p = await page(await context());
    await p.goto(`${base}/chat.html?pick`);
    await p.fill('#name', 'carol');
    await p.click('#picker button');
    await p.waitForURL(/\?name=carol$/);
    await p.waitForSelector('.state[data-state="connected"]');
    expect(await p.textContent('#me')).toBe('carol');
  });
});

describe('pages at 390 px and screenshots', () => {
  it('no page scrolls sideways at 390 px; screenshots of admin, chat and dashboard at both widths', async () => {
    const shots: string[] = [];
    for (const [width, tag] of [
      [1280, 'desktop'],
      [390, '390px'],
    ] as const) {
      const ctx = await context(width, 844);
      const chatOther = await page(ctx);
      await chatOther.goto(`${base}/chat.html?name=dana`);
      const pages: Array<[string, string]> = [
        ['index', '/'],
        ['chat-picker', '/chat.html?pick'],
        ['chat', '/chat.html?name=erin'],
        ['dashboard', '/dashboard.html'],
        ['admin-login', '/admin'],
      ];
      for (const [name, path] of pages) {
        const p = await page(ctx);
        await p.goto(`${base}${path}`);
        if (name === 'chat') {
          await p.waitForSelector('.state[data-state="connected"]');
          await p.fill('#text', `a message from erin at ${tag}`);
          await p.press('#text', 'Enter');
          await p.waitForFunction(() => document.querySelector('#messages li.mine .receipt')?.textContent?.includes('✓'));
          await chatOther.fill('#text', 'typing…');
        }
        if (name === 'dashboard') await p.waitForFunction(() => Number(document.querySelector('[data-metric="connections"]')!.textContent) >= 1, undefined, { timeout: 10_000 });
        const [scrollWidth, innerWidth] = await p.evaluate(() => [document.scrollingElement!.scrollWidth, window.innerWidth]);
        expect(scrollWidth, `${name} at ${width}px`).toBeLessThanOrEqual(innerWidth);
        if (name !== 'index' && name !== 'chat-picker' && name !== 'admin-login') {
          const file = join(SHOTS, `${name}-${tag}.png`);
          await p.screenshot({ path: file, fullPage: true });
          shots.push(file);
        }
      }
      const admin = await page(ctx);
      await login(admin);
      await admin.waitForFunction(() => Number(document.querySelector('#card-connections')!.textContent) >= 2);
      for (const tab of ['overview', 'channels', 'users', 'actions']) {
        await admin.click(`a[data-tab="${tab}"]`);
        if (tab === 'channels') {
          await admin.locator('#channel-list a', { hasText: 'chat:lobby' }).click();
          await admin.waitForSelector('#detail-history td');
          if (tag === 'desktop') {
            // The live tail shows what is published while it runs.
            await admin.click('#tail-toggle');
            await admin.waitForFunction(() => document.querySelector('#detail-tail')!.textContent!.includes('subscribed'));
            const res = await fetch(`${base}/api/publish`, {
              method: 'POST',
              headers: { authorization: `apikey ${apiKey()}` },
              body: JSON.stringify({ channel: 'chat:lobby', data: { tail: 'sentinel' } }),
            });
            expect(res.status).toBe(200);
            await admin.waitForFunction(() => document.querySelector('#detail-tail')!.textContent!.includes('"tail":"sentinel"'));
          }
        }
        if (tab === 'users') await admin.locator('#user-list td', { hasText: 'dana' }).waitFor();
        const [scrollWidth, innerWidth] = await admin.evaluate(() => [document.scrollingElement!.scrollWidth, window.innerWidth]);
        expect(scrollWidth, `admin ${tab} at ${width}px`).toBeLessThanOrEqual(innerWidth);
        const file = join(SHOTS, `admin-${tab}-${tag}.png`);
        await admin.screenshot({ path: file, fullPage: true });
        shots.push(file);
      }
      await ctx.close();
    }
    expect(shots.length).toBe(12);
  }, 60_000);
});

describe('chat across a server restart, and without demo mode', () => {
  it('a graceful restart shows no false "left"; a message sent meanwhile is pending, then delivered once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-web-restart-'));
    const env2 = cleanEnv({ SWITCHBOARD_DATA_DIR: join(dir, 'data') });
    let first: ServeProcess | undefined = await startServe(['--demo', '--port', '0', '--host', '127.0.0.1'], dir, env2);
    let second: ServeProcess | undefined;
    try {
      const url = first.httpUrl;
      const ctx = await context();
      const ann = await page(ctx);
      const ben = await page(ctx);
      await ann.goto(`${url}/chat.html?name=ann`);
      await ben.goto(`${url}/chat.html?name=ben`);
      for (const p of [ann, ben]) {
        await p.waitForSelector('.state[data-state="connected"]');
        await p.waitForFunction(() => document.querySelectorAll('#people li').length === 2);
      }
      await first.stop();
      first = undefined;
      for (const p of [ann, ben]) await p.waitForFunction(() => document.querySelector('.state')!.textContent === 'server restarting…');
      await ann.fill('#text', 'sent while the server was down');
      await ann.press('#text', 'Enter');
      await ann.waitForSelector('#messages li.pending');
      expect(await ann.textContent('#messages li.pending .receipt')).toContain('pending');

      second = await startServe(['--demo', '--port', String(new URL(url).port), '--host', '127.0.0.1'], dir, env2);
      for (const p of [ann, ben]) await p.waitForSelector('.state[data-state="connected"]', { timeout: 20_000 });
      const delivered = (p: Page) =>
        p.waitForFunction(
          () => [...document.querySelectorAll('#messages li.msg')].filter((li) => li.textContent!.includes('sent while the server was down')).length === 1,
          undefined,
          { timeout: 15_000 },
        );
      await delivered(ben);
      await delivered(ann);
      await ann.waitForFunction(() => document.querySelectorAll('#messages li.pending').length === 0);
      const notices = async (p: Page) => (await p.locator('#messages li.system').allTextContents()).join(' | ');
      expect(await notices(ann)).not.toContain('left');
      expect(await notices(ben)).not.toContain('left');
    } finally {
      await first?.stop();
      await second?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('without --demo the pages say so in words', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-web-nodemo-'));
    const plain = await startServe(['--memory', '--port', '0', '--host', '127.0.0.1'], dir, cleanEnv({ SWITCHBOARD_DATA_DIR: join(dir, 'data') }));
    try {
      const p = await page(await context());
      await p.goto(`${plain.httpUrl}/chat.html?name=ann`);
      await p.waitForSelector('#banner:not([hidden])');
      expect(await p.textContent('#banner')).toContain('not in demo mode');
      expect(await p.textContent('.state')).not.toContain('connect() called');
    } finally {
      await plain.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
