import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer } from './support/harness.js';

/** Tokens checked against a JWKS endpoint (a local one), with algorithms pinned. */
let jwks: Server;
let jwksUrl: string;
let good: CryptoKey;
let other: CryptoKey;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  good = pair.privateKey;
  other = (await generateKeyPair('RS256')).privateKey;
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  jwks = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [publicJwk] })));
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
});

afterEach(closeAllServers);
afterAll(() => new Promise<void>((r) => jwks.close(() => r())));

function token(key: CryptoKey, sub = 'alice', kid = 'k1'): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid }).setSubject(sub).setIssuedAt().setExpirationTime('5m').sign(key);
}

describe('JWKS (BRIEF §5.2)', () => {
  it('accepts tokens signed by a key of the set and refuses others', async () => {
    const s = await createTestServer({ auth: { jwksUrl } });
    const ok = await s.client({ token: await token(good) });
    expect(ok.connectResult.user).toBe('alice');
    for (const bad of [await token(other), await token(other, 'alice', 'k2'), await s.token('alice')]) {
      const c = await s.client({ connect: false });
      const reply = await c.request('connect', { token: bad });
      expect(reply.error?.code).toBe(101);
      expect((await c.waitForClose()).code).toBe(4500);
    }
  });

  it('refuses an HS256 token made with the public key as the secret (algorithm confusion)', async () => {
    const s = await createTestServer({ auth: { jwksUrl } });
    const publicJwk = await (await fetch(jwksUrl)).text();
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .setSubject('alice')
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(publicJwk));
    const c = await s.client({ connect: false });
    expect((await c.request('connect', { token: forged })).error?.code).toBe(101);
  });
});
