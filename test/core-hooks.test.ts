/**
 * Application hooks and RPC handlers are bounded by limits.hookTimeoutMs: one that never
 * settles fails its command with 115 (temporary), and the session and the server go on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer } from './support/harness.js';

afterEach(closeAllServers);

const never = (): Promise<never> => new Promise<never>(() => undefined);

describe('hooks that never settle', () => {
  it('onSubscribe and onPublish: 115, temporary; other channels and commands still work', async () => {
    const s = await createTestServer({
      limits: { hookTimeoutMs: 300 },
      namespaces: { chat: { clientPublish: 'any' } },
      hooks: {
        onSubscribe: (_ctx, channel) => (channel === 'chat:stuck' ? never() : undefined),
        onPublish: (_ctx, channel, data) => (channel === 'chat:slowpub' ? never() : data),
      },
    });
    const c = await s.client();
    const sub = await c.request('subscribe', { channel: 'chat:stuck' });
    expect(sub.error).toMatchObject({ code: 115, temporary: true });
    const pub = await c.request('publish', { channel: 'chat:slowpub', data: 1 });
    expect(pub.error).toMatchObject({ code: 115, temporary: true });
    // The session is fine: a subscribe and a publish elsewhere go through.
    await c.subscribe('chat:fine');
    expect(await c.call('publish', { channel: 'chat:fine', data: { ok: true } })).toMatchObject({ offset: 1 });
    await c.waitFor((m) => m.push === 'pub' && m.channel === 'chat:fine');
  });

  it('an RPC handler: 115; onConnect: the connect fails with 115 and the session ends', async () => {
    const s = await createTestServer({
      limits: { hookTimeoutMs: 300 },
      hooks: { onConnect: (ctx) => (ctx.user === 'slow' ? never() : undefined) },
    });
    s.hub.rpc('stuck', () => never());
    s.hub.rpc('fine', () => ({ ok: true }));
    const c = await s.client();
    expect((await c.request('rpc', { method: 'stuck' })).error).toMatchObject({ code: 115, temporary: true });
    expect(await c.call('rpc', { method: 'fine' })).toEqual({ data: { ok: true } });

    const slow = await s.client({ user: 'slow', connect: false });
    expect(await slow.errorCode('connect', { token: await s.token('slow') })).toBe(115);
    expect((await slow.waitForClose()).code).toBe(4006); // temporary: the client may reconnect
    expect(s.hub.stats().connections).toBe(1);
  });
});
