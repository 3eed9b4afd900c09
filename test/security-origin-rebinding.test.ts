import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { HubOptions } from '../src/config/options.js';
import type { Node } from '../src/hub/node.js';
import { Admission } from '../src/transport/admission.js';
import { launchChromium } from './support/browser.js';
import { closeAllServers, createTestServer, type TestServer } from './support/harness.js';
import { handshakeStatus } from './support/protocol-client.js';

afterEach(closeAllServers);

/**
 * DNS rebinding: a page on `http://evil.example:PORT` whose name the attacker re-points at
 * 127.0.0.1 talks to the hub with `Origin: http://evil.example:PORT` and
 * `Host: evil.example:PORT` — the same origin, by the letter. Only a trusted Host makes the
 * same origin count.
 */
const upgrade = (s: TestServer, host: string, origin: string | undefined = `http://${host}`): Promise<number> =>
  handshakeStatus(s.url, { headers: { Host: host }, ...(origin === undefined ? {} : { origin }) });

/** A raw GET with any headers (Host included); resolves with the status and headers, then drops the body. */
function get(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res: IncomingMessage) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
      res.destroy();
    });
    req.on('error', reject);
    req.end();
  });
}

describe('DNS rebinding on the WebSocket upgrade', () => {
  it('refuses the same origin when the Host is a name that is not trusted', async () => {
    const s = await createTestServer();
    const p = s.port;
    expect(await upgrade(s, `evil.example:${p}`)).toBe(403);
    expect(await upgrade(s, `EVIL.example:${p}`, `http://evil.example:${p}`)).toBe(403);
    expect(await upgrade(s, `localhost.evil.example:${p}`)).toBe(403);
    expect(await upgrade(s, `127.0.0.1.evil.example:${p}`)).toBe(403);
    expect(await upgrade(s, 'evil.example')).toBe(403);
    expect(s.hub.stats().connections).toBe(0);
  });

  it('keeps accepting the same origin on IP literals and localhost', async () => {
    const s = await createTestServer();
    const p = s.port;
    expect(await upgrade(s, `127.0.0.1:${p}`)).toBe(101);
    expect(await upgrade(s, `10.1.2.3:${p}`)).toBe(101);
    expect(await upgrade(s, `[::1]:${p}`)).toBe(101);
    expect(await upgrade(s, `localhost:${p}`)).toBe(101);
    expect(await upgrade(s, `LocalHost:${p}`, `http://localhost:${p}`)).toBe(101);
    expect(await upgrade(s, `app.localhost:${p}`)).toBe(101);
    // Same host, but not the same origin: still refused.
    expect(await upgrade(s, `localhost:${p}`, `http://localhost:${p + 1}`)).toBe(403);
    expect(await upgrade(s, `localhost:${p}`, `http://127.0.0.1:${p}`)).toBe(403);
  });

  it('trusts the names on allowedHosts: exact, .domain for it and its subdomains, * for any', async () => {
    const exact = await createTestServer({ allowedHosts: ['chat.example.com'] });
    expect(await upgrade(exact, `chat.example.com:${exact.port}`)).toBe(101);
    expect(await upgrade(exact, 'chat.example.com')).toBe(101);
    expect(await upgrade(exact, 'Chat.Example.COM', 'http://chat.example.com')).toBe(101);
    expect(await upgrade(exact, 'eu.chat.example.com')).toBe(403);
    expect(await upgrade(exact, 'example.com')).toBe(403);
    expect(await upgrade(exact, 'chat.example.com.evil.example')).toBe(403);

    const domain = await createTestServer({ allowedHosts: ['.example.com'] });
    expect(await upgrade(domain, 'example.com')).toBe(101);
    expect(await upgrade(domain, 'chat.example.com')).toBe(101);
    expect(await upgrade(domain, 'a.b.example.com')).toBe(101);
    expect(await upgrade(domain, 'evilexample.com')).toBe(403);
    expect(await upgrade(domain, 'example.com.evil.example')).toBe(403);

    const any = await createTestServer({ allowedHosts: ['*'] });
    expect(await upgrade(any, `evil.example:${any.port}`)).toBe(101);
  });

  it('lets origins on allowedOrigins through whatever the Host', async () => {
    const s = await createTestServer({ allowedOrigins: ['https://app.example'] });
    expect(await upgrade(s, 'anything.example', 'https://app.example')).toBe(101);
    expect(await upgrade(s, 'app.example', 'https://app.example')).toBe(101);
    expect(await upgrade(s, 'app.example', 'http://app.example')).toBe(403);
  });

  it('refuses malformed Host headers for the same origin', async () => {
    const s = await createTestServer();
    for (const host of ['[::1', '[evil.example]:80', '127.0.0.1:80:80', '127.0.0.1:x']) {
      expect(await upgrade(s, host), host).toBe(403);
    }
  });

  it('validates allowedHosts', async () => {
    for (const bad of ['https://chat.example.com', 'chat.example.com:443', 'chat.example.com/ws', '', '*.example.com']) {
      await expect(createTestServer({ allowedHosts: [bad] }), bad).rejects.toThrow(/allowedHosts/);
    }
  });
});

describe('DNS rebinding on SSE', () => {
  it('refuses a rebinding Origin on an untrusted Host; a trusted Host or a missing Origin passes as before', async () => {
    const s = await createTestServer();
    const token = await s.token('alice');
    const path = `/sse?channel=chat:x&token=${token}`;
    const host = `evil.example:${s.port}`;
    const rebound = await get(s.port, path, { Host: host, Origin: `http://${host}` });
    expect(rebound.status).toBe(403);
    expect(rebound.headers['access-control-allow-origin']).toBeUndefined();
    expect((await get(s.port, path, { Host: `localhost:${s.port}`, Origin: `http://localhost:${s.port}` })).status).toBe(200);
    expect((await get(s.port, path, { Host: `127.0.0.1:${s.port}`, Origin: `http://127.0.0.1:${s.port}` })).status).toBe(200);
    // No Origin (non-browser clients) follows allowMissingOrigin, whatever the Host.
    expect((await get(s.port, path, { Host: host })).status).toBe(200);
  });

  it('echoes Access-Control-Allow-Origin only for origins on allowedOrigins, never for the same origin', async () => {
    const s = await createTestServer({ allowedOrigins: ['https://app.example'] });
    const token = await s.token('alice');
    const path = `/sse?channel=chat:x&token=${token}`;
    const listed = await get(s.port, path, { Host: 'evil.example', Origin: 'https://app.example' });
    expect(listed.status).toBe(200);
    expect(listed.headers['access-control-allow-origin']).toBe('https://app.example');
    const same = await get(s.port, path, { Host: `127.0.0.1:${s.port}`, Origin: `http://127.0.0.1:${s.port}` });
    expect(same.status).toBe(200);
    expect(same.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('Admission.corsOrigin', () => {
  const admission = (options: Partial<HubOptions>): Admission =>
    new Admission({
      options: {
        allowedOrigins: [],
        allowedHosts: [],
        allowMissingOrigin: true,
        limits: { connectionRatePerIp: { perSecond: 1, burst: 1 } },
        ...options,
      },
    } as unknown as Node);
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

  it('returns the Origin only when allowedOrigins allows it explicitly', () => {
    const listed = admission({ allowedOrigins: ['https://app.example'] });
    expect(listed.corsOrigin(req({ origin: 'https://app.example', host: 'x' }))).toBe('https://app.example');
    expect(listed.corsOrigin(req({ origin: 'https://evil.example', host: 'evil.example' }))).toBeUndefined();
    expect(listed.corsOrigin(req({ origin: 'http://127.0.0.1:1', host: '127.0.0.1:1' }))).toBeUndefined();
    expect(listed.corsOrigin(req({ host: '127.0.0.1:1' }))).toBeUndefined();
    expect(admission({ allowedOrigins: ['*'] }).corsOrigin(req({ origin: 'https://any.example' }))).toBe('https://any.example');
    const none = admission({ allowedHosts: ['*'] });
    expect(none.corsOrigin(req({ origin: 'http://evil.example', host: 'evil.example' }))).toBeUndefined();
    expect(none.originAllowed(req({ origin: 'http://evil.example', host: 'evil.example' }))).toBe(true);
    for (const a of [listed, none]) a.stop();
  });
});

/** A real browser, with `evil.example` resolving to 127.0.0.1: what an attacker gets from rebinding. */
describe('DNS rebinding from a real browser', () => {
  let browser: Browser | undefined;
  afterAll(async () => browser?.close());

  it('a page on a rebound name cannot open a WebSocket; the same page on 127.0.0.1 or localhost can', async () => {
    browser = await launchChromium(['--host-resolver-rules=MAP evil.example 127.0.0.1']);
    const s = await createTestServer();
    const token = await s.token('alice');
    const attempt = async (origin: string): Promise<string> => {
      const page = await browser!.newPage();
      await page.goto(`${origin}/no-such-page`);
      const result = await page.evaluate(
        (tok) =>
          new Promise<string>((resolve) => {
            const sock = new WebSocket(`ws://${location.host}/ws?token=${tok}`);
            sock.onopen = () => {
              sock.close();
              resolve('open');
            };
            sock.onerror = () => resolve('refused');
          }),
        token,
      );
      await page.close();
      return result;
    };
    expect(await attempt(`http://evil.example:${s.port}`)).toBe('refused');
    expect(await attempt(`http://127.0.0.1:${s.port}`)).toBe('open');
    expect(await attempt(`http://localhost:${s.port}`)).toBe('open');
  });
});
