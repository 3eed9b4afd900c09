import { describe, expect, it } from 'vitest';
import { createHub, OptionsError, resolveOptions } from '../src/index.js';

const secret = 'options-test-secret-0123456789abcdef';

function issuesOf(input: unknown): string {
  try {
    resolveOptions(input);
  } catch (err) {
    expect(err).toBeInstanceOf(OptionsError);
    expect(err).toBeInstanceOf(TypeError);
    return (err as Error).message;
  }
  throw new Error(`resolveOptions accepted ${JSON.stringify(input)}`);
}

describe('resolveOptions', () => {
  it('fills every documented default (BRIEF §4)', () => {
    const o = resolveOptions({ auth: { secret } });
    expect(o.limits).toMatchObject({
      maxMessageBytes: 64 * 1024,
      maxQueueBytes: 1024 * 1024,
      pingIntervalMs: 25_000,
      pongTimeoutMs: 10_000,
      connectTimeoutMs: 15_000,
      maxChannelsPerConnection: 128,
      recoveryMaxPublications: 300,
      idempotencyWindowMs: 120_000,
      commandRate: { perSecond: 100, burst: 200 },
      shutdownTimeoutMs: 30_000,
    });
    expect(o.limits.maxConnections).toBeGreaterThan(0);
    expect(o.limits.maxConnectionsPerUser).toBeGreaterThan(0);
    expect(o.limits.connectionRatePerIp.perSecond).toBeGreaterThan(0);
    expect(o.limits.headersTimeoutMs).toBeGreaterThan(0);
    expect(o).toMatchObject({ path: '/ws', dataDir: null, allowedOrigins: [], allowMissingOrigin: true, port: 7070 });
    expect(o.auth.allowAnonymous).toBe(false);
    expect(o.defaultNamespace).toMatchObject({ recover: true, presence: false, joinLeave: false });
    expect(o.defaultNamespace.history.size).toBeGreaterThan(0);
  });

  it('fills namespace defaults inside each namespace', () => {
    const o = resolveOptions({ auth: { secret }, namespaces: { chat: { presence: true } } });
    expect(o.namespaces.chat).toMatchObject({ presence: true, recover: true, history: o.defaultNamespace.history });
  });

  it('returns a deeply frozen copy and leaves the input alone', () => {
    const input = { auth: { secret }, namespaces: { chat: { history: { size: 5 } } }, limits: { maxQueueBytes: 200_000 } };
    const snapshot = JSON.stringify(input);
    const o = resolveOptions(input);
    expect(JSON.stringify(input)).toBe(snapshot);
    expect(o).not.toBe(input);
    for (const part of [
      o,
      o.limits,
      o.limits.commandRate,
      o.auth,
      o.namespaces,
      o.namespaces.chat,
      o.namespaces.chat!.history,
      o.allowedOrigins,
    ]) {
      expect(Object.isFrozen(part)).toBe(true);
    }
    expect(() => {
      (o.limits as { maxQueueBytes: number }).maxQueueBytes = 1;
    }).toThrow(TypeError);
    expect(() => {
      (o.namespaces.chat!.history as { size: number }).size = 1;
    }).toThrow(TypeError);
    input.limits.maxQueueBytes = 5;
    expect(o.limits.maxQueueBytes).toBe(200_000);
  });

  it('rejects unknown keys at every level, naming them', () => {
    expect(issuesOf({ auth: { secret }, bogus: 1 })).toContain('bogus');
    expect(issuesOf({ auth: { secret }, limits: { maxQueueByte: 1 } })).toMatch(/limits.*maxQueueByte/);
    expect(issuesOf({ auth: { secret, secrets: 'x' } })).toMatch(/auth.*secrets/);
    expect(issuesOf({ auth: { secret }, namespaces: { chat: { histroy: {} } } })).toMatch(/namespaces\.chat.*histroy/);
    expect(issuesOf({ auth: { secret }, namespaces: { chat: { history: { sise: 1 } } } })).toMatch(/sise/);
  });

  it('names each bad field, all of them at once', () => {
    const msg = issuesOf({
      auth: { secret },
      limits: { maxQueueBytes: -1, pingIntervalMs: 'soon' },
      namespaces: { chat: { clientPublish: 'everyone' } },
    });
    expect(msg).toContain('limits.maxQueueBytes');
    expect(msg).toContain('limits.pingIntervalMs');
    expect(msg).toContain('namespaces.chat.clientPublish');
    expect(issuesOf({ auth: { secret: 'short' } })).toContain('auth.secret');
    expect(issuesOf({ auth: { secret }, namespaces: { 'bad name!': {} } })).toContain('namespaces');
    expect(issuesOf({ auth: { secret }, limits: { maxConnections: 1.5 } })).toContain('limits.maxConnections');
  });

  it('throws a TypeError naming both sides of conflicting options', () => {
    expect(issuesOf({ auth: { secret, publicKey: '-----BEGIN PUBLIC KEY-----' } })).toMatch(
      /auth\.secret.*auth\.publicKey|auth\.publicKey.*auth\.secret/,
    );
    expect(issuesOf({ auth: { secret }, namespaces: { chat: { joinLeave: true } } })).toMatch(/joinLeave.*presence/);
    expect(issuesOf({ auth: { secret }, limits: { pingIntervalMs: 1000, pongTimeoutMs: 2000 } })).toMatch(/pongTimeoutMs.*pingIntervalMs/);
    expect(issuesOf({ auth: { secret, algorithms: ['RS256'] } })).toContain('algorithms');
  });

  it('requires a way to authenticate (or explicit anonymous access)', () => {
    expect(issuesOf({})).toContain('auth');
    expect(resolveOptions({ auth: { allowAnonymous: true } }).auth.allowAnonymous).toBe(true);
  });

  it('createHub validates at once and throws OptionsError', () => {
    expect(() => createHub({ auth: { secret }, limits: { maxQueueBytes: 0 } })).toThrow(OptionsError);
    expect(() => createHub({ auth: { secret }, ...({ nope: true } as object) })).toThrow(/nope/);
  });
});
