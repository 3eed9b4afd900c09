import { createHmac } from 'node:crypto';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { b64url, closeAllServers, createTestServer, nowSeconds, TEST_SECRET, type TestServer } from './support/harness.js';
import { handshakeStatus, type ProtocolClient } from './support/protocol-client.js';

afterEach(closeAllServers);

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

function hs256(
  secret: string,
  claims: Record<string, unknown>,
  header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' },
): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(enc(secret));
}

/** An unsigned token: `alg: none` and an empty signature. */
function algNone(claims: Record<string, unknown>): string {
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`;
}

/** HS256 by hand with an arbitrary key (algorithm confusion: the RSA public key PEM as the HMAC secret). */
function hs256ByHand(key: string, claims: Record<string, unknown>): string {
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}`;
  return `${head}.${createHmac('sha256', key).update(head).digest('base64url')}`;
}

/**
 * Sends connect with `token` and waits for the close. Fails if the connect succeeded. Returns the
 * close code and the reply's error code (undefined when no reply came before the close).
 */
async function refusal(s: TestServer, token: string | undefined): Promise<{ error: number | undefined; close: number }> {
  const c = await s.client({ connect: false });
  const id = c.id();
  c.sendRaw(JSON.stringify({ id, method: 'connect', params: token === undefined ? {} : { token } }));
  // Whichever comes first: the close, or a (wrong) successful reply.
  await Promise.race([c.waitForClose(), c.waitFor((m) => m.id === id && m.result !== undefined)]);
  const reply = c.messages.find((m) => m.id === id);
  expect(reply?.result, `connect should be refused, got ${JSON.stringify(reply?.result)}`).toBeUndefined();
  const closed = await c.waitForClose();
  return { error: reply?.error?.code, close: closed.code };
}

/** The close code of a refused connect (the security property: the session ends). */
async function refused(s: TestServer, token: string | undefined): Promise<number> {
  return (await refusal(s, token)).close;
}

async function accepted(s: TestServer, token: string, user = 'alice'): Promise<ProtocolClient> {
  const c = await s.client({ connect: false });
  const result = await c.connect(token);
  expect(result.user).toBe(user);
  return c;
}

const exp = (): number => nowSeconds() + 3600;

describe('JWT verification, HS256 (BRIEF §5.2)', () => {
  it('accepts a valid token and reports user, client, expiry and version', async () => {
    const s = await createTestServer();
    const c = await s.client({ connect: false });
    const token = await s.token('alice', { ttl: 600 });
    const r = await c.connect(token);
    expect(r).toMatchObject({ user: 'alice', version: 1, client: expect.any(String), ping: expect.any(Number), pong: expect.any(Number) });
    expect(r.expires).toBeGreaterThan(nowSeconds());
  });

  it('a refused connect gets its error reply (101, or 109 when expired) before the close', async () => {
    const s = await createTestServer();
    expect(await refusal(s, 'garbage')).toEqual({ error: 101, close: 4500 });
    const expired = await hs256(TEST_SECRET, { sub: 'alice', exp: nowSeconds() - 10 });
    expect(await refusal(s, expired)).toEqual({ error: 109, close: 4003 });
  });

  it('refuses a missing token (close 4500)', async () => {
    const s = await createTestServer();
    expect(await refused(s, undefined)).toBe(4500);
    expect(await refused(s, '')).toBe(4500);
  });

  it('refuses a bad signature and garbage', async () => {
    const s = await createTestServer();
    const other = await hs256('another-secret-0123456789abcdef-0123', { sub: 'alice', exp: exp() });
    expect(await refused(s, other)).toBe(4500);
    const good = await s.token('alice');
    const [h, p] = good.split('.');
    const tampered = `${h}.${b64url({ sub: 'admin', exp: exp() })}.${good.split('.')[2]}`;
    expect(await refused(s, tampered)).toBe(4500);
    expect(await refused(s, `${h}.${p}`)).toBe(4500);
    expect(await refused(s, 'not.a.jwt')).toBe(4500);
  });

  it('refuses an expired token (close 4003)', async () => {
    const s = await createTestServer();
    const token = await hs256(TEST_SECRET, { sub: 'alice', exp: nowSeconds() - 10 });
    expect(await refused(s, token)).toBe(4003);
  });

  it('refuses a not-yet-valid token (nbf in the future)', async () => {
    const s = await createTestServer();
    const token = await hs256(TEST_SECRET, { sub: 'alice', exp: exp(), nbf: nowSeconds() + 600 });
    expect(await refused(s, token)).toBe(4500);
  });

  it('refuses a token without sub', async () => {
    const s = await createTestServer();
    expect(await refused(s, await hs256(TEST_SECRET, { exp: exp() }))).toBe(4500);
  });

  it('refuses alg: none, even with a valid-looking payload', async () => {
    const s = await createTestServer();
    expect(await refused(s, algNone({ sub: 'alice', exp: exp() }))).toBe(4500);
    // "none" with the real signature of another token appended is still refused.
    const sig = (await s.token('alice')).split('.')[2];
    expect(await refused(s, algNone({ sub: 'alice', exp: exp() }) + sig)).toBe(4500);
  });

  it('refuses HS384/HS512 tokens when only HS256 is configured (algorithms pinned)', async () => {
    const s = await createTestServer();
    const t = await hs256(TEST_SECRET, { sub: 'alice', exp: exp() }, { alg: 'HS512' });
    expect(await refused(s, t)).toBe(4500);
  });

  it('checks aud and iss when configured', async () => {
    const s = await createTestServer({ auth: { secret: TEST_SECRET, audience: 'switchboard', issuer: 'https://auth.example' } });
    await accepted(s, await s.token('alice', { audience: 'switchboard', issuer: 'https://auth.example' }));
    expect(await refused(s, await s.token('alice', { audience: 'other', issuer: 'https://auth.example' }))).toBe(4500);
    expect(await refused(s, await s.token('alice', { audience: 'switchboard', issuer: 'https://evil.example' }))).toBe(4500);
    expect(await refused(s, await s.token('alice'))).toBe(4500); // neither claim
  });

  it('anonymous connections only when allowed', async () => {
    const closed = await createTestServer();
    expect(await refused(closed, undefined)).toBe(4500);
    const open = await createTestServer({ auth: { secret: TEST_SECRET, allowAnonymous: true } });
    const c = await open.client({ token: null });
    expect(c.connectResult.user).toBe('');
    // Anonymous is still not a way around a bad token.
    expect(await refused(open, 'garbage')).toBe(4500);
  });

  it('no command works before a successful connect', async () => {
    const s = await createTestServer();
    const c = await s.client({ connect: false });
    expect(await c.errorCode('subscribe', { channel: 'chat:x' })).toBe(110);
    expect(await c.errorCode('publish', { channel: 'chat:x', data: 1 })).toBe(110);
  });
});

describe('handshake tokens', () => {
  it('refuses a bad token in ?token= or Authorization: Bearer with HTTP 401', async () => {
    const s = await createTestServer();
    const bad = await hs256('another-secret-0123456789abcdef-0123', { sub: 'alice', exp: exp() });
    expect(await handshakeStatus(`${s.url}?token=${bad}`)).toBe(401);
    expect(await handshakeStatus(s.url, { headers: { authorization: `Bearer ${bad}` } })).toBe(401);
    expect(await handshakeStatus(`${s.url}?token=${algNone({ sub: 'alice', exp: exp() })}`)).toBe(401);
    const expired = await hs256(TEST_SECRET, { sub: 'alice', exp: nowSeconds() - 10 });
    expect(await handshakeStatus(s.url, { headers: { authorization: `Bearer ${expired}` } })).toBe(401);
    expect(s.hub.stats().connections).toBe(0);
  });

  it('a good handshake token lets connect go without one', async () => {
    const s = await createTestServer();
    const q = await s.open({ query: `token=${await s.token('bob')}` });
    expect((await q.connect()).user).toBe('bob');
    const h = await s.open({ headers: { authorization: `Bearer ${await s.token('carol')}` } });
    expect((await h.connect()).user).toBe('carol');
  });
});

describe('JWT verification, public keys (RS256 / ES256)', () => {
  let rsa: CryptoKeyPair;
  let rsaPem: string;
  let ec: CryptoKeyPair;
  let ecPem: string;
  let otherRsa: CryptoKeyPair;

  beforeAll(async () => {
    rsa = await generateKeyPair('RS256', { extractable: true });
    rsaPem = await exportSPKI(rsa.publicKey);
    ec = await generateKeyPair('ES256', { extractable: true });
    ecPem = await exportSPKI(ec.publicKey);
    otherRsa = await generateKeyPair('RS256', { extractable: true });
  });

  const sign = (key: CryptoKey, alg: string, claims: Record<string, unknown> = { sub: 'alice', exp: exp() }): Promise<string> =>
    new SignJWT(claims).setProtectedHeader({ alg }).sign(key);

  it('RS256: accepts a token of the key, refuses another key, alg none and algorithm confusion', async () => {
    const s = await createTestServer({ auth: { publicKey: rsaPem } });
    await accepted(s, await sign(rsa.privateKey, 'RS256'));
    expect(await refused(s, await sign(otherRsa.privateKey, 'RS256'))).toBe(4500);
    expect(await refused(s, algNone({ sub: 'alice', exp: exp() }))).toBe(4500);
    // Algorithm confusion: HS256 with the public key PEM (exactly as configured) as the HMAC secret.
    expect(await refused(s, hs256ByHand(rsaPem, { sub: 'alice', exp: exp() }))).toBe(4500);
    expect(await refused(s, hs256ByHand(rsaPem.trim(), { sub: 'alice', exp: exp() }))).toBe(4500);
    // An HS256 token with the test secret means nothing to a public-key server.
    expect(await refused(s, await s.token('alice'))).toBe(4500);
    const expired = await sign(rsa.privateKey, 'RS256', { sub: 'alice', exp: nowSeconds() - 10 });
    expect(await refused(s, expired)).toBe(4003);
    expect(await handshakeStatus(`${s.url}?token=${hs256ByHand(rsaPem, { sub: 'alice', exp: exp() })}`)).toBe(401);
  });

  it('ES256: accepts a token of the key, refuses another EC key and confusion', async () => {
    const s = await createTestServer({ auth: { publicKey: ecPem } });
    await accepted(s, await sign(ec.privateKey, 'ES256'));
    const otherEc = await generateKeyPair('ES256');
    expect(await refused(s, await sign(otherEc.privateKey, 'ES256'))).toBe(4500);
    expect(await refused(s, hs256ByHand(ecPem, { sub: 'alice', exp: exp() }))).toBe(4500);
  });
});
