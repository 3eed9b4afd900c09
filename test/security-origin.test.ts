import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer } from './support/harness.js';
import { handshakeStatus } from './support/protocol-client.js';

afterEach(closeAllServers);

describe('Origin check on the upgrade (BRIEF §5.1)', () => {
  it('refuses a foreign Origin with HTTP 403 before the upgrade; allowlisted and same origin pass', async () => {
    const s = await createTestServer({ allowedOrigins: ['https://app.example'] });
    expect(await handshakeStatus(s.url, { origin: 'https://evil.example' })).toBe(403);
    expect(await handshakeStatus(s.url, { origin: 'https://app.example.evil.example' })).toBe(403);
    expect(await handshakeStatus(s.url, { origin: 'http://app.example' })).toBe(403); // scheme matters
    expect(await handshakeStatus(s.url, { origin: 'null' })).toBe(403);
    expect(await handshakeStatus(s.url, { origin: 'https://app.example' })).toBe(101);
    expect(await handshakeStatus(s.url, { origin: `http://127.0.0.1:${s.port}` })).toBe(101);
    expect(s.hub.stats().connections).toBeLessThanOrEqual(2);
  });

  it('by default (empty allowlist) allows only the same origin', async () => {
    const s = await createTestServer();
    expect(await handshakeStatus(s.url, { origin: 'https://evil.example' })).toBe(403);
    expect(await handshakeStatus(s.url, { origin: `http://127.0.0.1:${s.port + 1}` })).toBe(403);
    expect(await handshakeStatus(s.url, { origin: `http://127.0.0.1:${s.port}` })).toBe(101);
  });

  it('a refused handshake never becomes a connection and the server keeps serving', async () => {
    const s = await createTestServer({ allowedOrigins: ['https://app.example'] });
    const ok = await s.client({ origin: 'https://app.example' });
    for (let i = 0; i < 10; i++) expect(await handshakeStatus(s.url, { origin: 'https://evil.example' })).toBe(403);
    expect(s.hub.stats().connections).toBe(1);
    await ok.subscribe('chat:o');
    await s.hub.publish('chat:o', 1);
    await ok.waitForPushes(1, (m) => m.push === 'pub');
  });

  it('a missing Origin follows allowMissingOrigin', async () => {
    const open = await createTestServer();
    expect(await handshakeStatus(open.url)).toBe(101);
    const strict = await createTestServer({ allowMissingOrigin: false, allowedOrigins: ['https://app.example'] });
    expect(await handshakeStatus(strict.url)).toBe(403);
    expect(await handshakeStatus(strict.url, { origin: 'https://app.example' })).toBe(101);
  });

  it('"*" allows any origin', async () => {
    const s = await createTestServer({ allowedOrigins: ['*'] });
    expect(await handshakeStatus(s.url, { origin: 'https://anything.example' })).toBe(101);
  });
});
