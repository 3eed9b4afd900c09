import { describe, expect, it } from 'vitest';
import { OptionsError, resolveOptions } from '../src/config/options.js';

const SECRET = 'a-proxy-secret-of-enough-length';
const endpoint = { url: 'http://127.0.0.1:9/proxy' };

function issues(input: unknown): string[] {
  try {
    resolveOptions(input);
  } catch (err) {
    if (err instanceof OptionsError) return err.issues;
    throw err;
  }
  return [];
}

describe('proxy and webhooks options', () => {
  it('fills defaults, and proxy.connect alone is a way to authenticate', () => {
    const o = resolveOptions({ proxy: { secret: SECRET, connect: endpoint }, webhooks: { url: 'https://example.com/hook', secret: SECRET } });
    expect(o.proxy).toMatchObject({ connectMode: 'withoutToken', maxInFlightPerConnection: 8, maxInFlight: 1000 });
    expect(o.proxy?.connect).toEqual({ url: endpoint.url, timeoutMs: 5000, forwardHeaders: ['cookie', 'authorization'], headers: {} });
    expect(o.webhooks).toMatchObject({ graceMs: 10_000, timeoutMs: 5000, batchSize: 100, retryForMs: 3_600_000 });
    expect(o.webhooks?.events).toContain('user.offline');
    // Built-in namespaces never go through the subscribe/publish proxy.
    expect(o.namespaces.notifications?.proxy).toEqual({ subscribe: null, publish: null });
  });

  it('names the bad field', () => {
    expect(issues({ auth: { allowAnonymous: true }, proxy: { secret: 'short', connect: { url: 'ftp://x' } } })).toEqual([
      'proxy.secret: must be at least 16 characters',
      'proxy.connect.url: must be an http:// or https:// URL',
    ]);
    expect(issues({ auth: { allowAnonymous: true }, proxy: { secret: SECRET, refresh: endpoint } })).toEqual(['proxy.refresh: needs proxy.connect']);
    expect(issues({ auth: { allowAnonymous: true }, proxy: { secret: SECRET, rpc: { ...endpoint, timeoutMs: 0 } } })[0]).toMatch(/^proxy\.rpc\.timeoutMs:/);
    expect(issues({ auth: { allowAnonymous: true }, proxy: { secret: SECRET, connect: { ...endpoint, forwardHeaders: ['Cookie'] } } })).toEqual([
      'proxy.connect.forwardHeaders.0: header names in lower case',
    ]);
    expect(issues({ auth: { allowAnonymous: true }, webhooks: { url: 'http://x/h', secret: SECRET, events: ['user.gone'] } })[0]).toMatch(/^webhooks\.events\.0:/);
    expect(issues({ auth: { allowAnonymous: true }, webhooks: { url: 'http://x/h', secret: SECRET, initialBackoffMs: 500, maxBackoffMs: 100 } })).toEqual([
      'webhooks.maxBackoffMs: must be at least webhooks.initialBackoffMs',
    ]);
    expect(issues({ auth: { allowAnonymous: true }, namespaces: { chat: { proxy: { publish: { url: 'nope' } } } } })[0]).toMatch(/^namespaces\.chat\.proxy\.publish\.url:/);
    expect(issues({ auth: { allowAnonymous: true }, namespaces: { chat: { webhooks: { publications: true } } } })[0]).toMatch(/^namespaces\.chat\.webhooks/);
  });
});
