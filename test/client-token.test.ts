import { afterEach, describe, expect, it } from 'vitest';
import { signToken } from '../src/auth/token.js';
import { SwitchboardClient, type ClientError, type StateChange } from '../src/client/index.js';
import { createHub, type Hub } from '../src/index.js';
import { TEST_SECRET } from './support/harness.js';
import { waitFor } from './support/processes.js';

const hubs: Hub[] = [];
const clients: SwitchboardClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  await Promise.all(hubs.splice(0).map((h) => h.close()));
});

async function startHub(): Promise<string> {
  const hub = createHub({
    auth: { secret: TEST_SECRET },
    limits: { shutdownSpreadMs: 0, shutdownTimeoutMs: 2_000 },
    namespaces: { chat: {} },
  });
  hubs.push(hub);
  return (await hub.listen(0, '127.0.0.1')).url;
}

function track(c: SwitchboardClient): { states: StateChange[]; errors: ClientError[] } {
  clients.push(c);
  const states: StateChange[] = [];
  const errors: ClientError[] = [];
  c.on('state', (s) => states.push(s));
  c.on('error', (e) => errors.push(e));
  return { states, errors };
}

describe('client tokens', () => {
  it('calls getToken again before the token expires and keeps the session', async () => {
    const url = await startHub();
    const hub = hubs[0]!;
    let calls = 0;
    const getToken = async (): Promise<string> => {
      calls += 1;
      return signToken({ secret: TEST_SECRET, user: 'alice', ttl: 2 });
    };
    const refreshing = new SwitchboardClient(url, { getToken, backoff: { minMs: 10, maxMs: 100, factor: 2 } });
    const r = track(refreshing);
    // Control: the same short token without getToken is cut off by the server at expiry (4003).
    const plain = new SwitchboardClient(url, { token: await signToken({ secret: TEST_SECRET, user: 'bob', ttl: 2 }) });
    const p = track(plain);
    const got: unknown[] = [];
    const sub = refreshing.subscribe('chat:t', { onPublication: (pub) => got.push(pub.data) });
    refreshing.connect();
    plain.connect();
    await sub.ready();
    const firstConnection = refreshing.clientId;

    await waitFor(() => plain.state === 'disconnected', 'the control client to be cut off', 10_000);
    expect(p.states.at(-1)).toMatchObject({ state: 'disconnected', code: 4003 });
    expect(p.states.at(-1)!.reason).toMatch(/token expired.*no getToken/);

    await waitFor(() => calls >= 3, 'two refreshes', 10_000);
    // Same connection all along: refreshed in place, never dropped.
    expect(refreshing.state).toBe('connected');
    expect(refreshing.clientId).toBe(firstConnection);
    expect(r.states.map((s) => s.state)).toEqual(['connecting', 'connected']);
    expect(r.errors).toEqual([]);
    await hub.publish('chat:t', 'still here');
    await waitFor(() => got.length === 1, 'a publication after the first token expired');
    expect(got).toEqual(['still here']);
  });

  it('gets a new token when the server refuses an expired one (109), then connects', async () => {
    const url = await startHub();
    const tokens = [
      await signToken({ secret: TEST_SECRET, user: 'alice', ttl: -10 }), // already expired
      await signToken({ secret: TEST_SECRET, user: 'alice', ttl: 3600 }),
    ];
    let calls = 0;
    const c = new SwitchboardClient(url, {
      getToken: async () => tokens[Math.min(calls++, 1)]!,
      backoff: { minMs: 10, maxMs: 100, factor: 2 },
    });
    const { errors } = track(c);
    c.connect();
    await c.ready(10_000);
    expect(calls).toBe(2);
    expect(errors.map((e) => e.code)).toEqual([109]);
    expect(errors[0]!.codeName).toBe('TOKEN_EXPIRED');
    expect(c.user).toBe('alice');
  });

  it('an expired static token without getToken is terminal', async () => {
    const url = await startHub();
    const c = new SwitchboardClient(url, {
      token: await signToken({ secret: TEST_SECRET, user: 'alice', ttl: -10 }),
      backoff: { minMs: 10, maxMs: 100, factor: 2 },
    });
    const { states, errors } = track(c);
    c.connect();
    await waitFor(() => c.state === 'disconnected', 'disconnected');
    expect(errors.map((e) => e.code)).toEqual([109]);
    expect(states.at(-1)).toMatchObject({ state: 'disconnected', code: 4003 });
  });

  it('keeps retrying (with backoff) while getToken fails, and connects once it works', async () => {
    const url = await startHub();
    let calls = 0;
    const c = new SwitchboardClient(url, {
      getToken: async () => {
        calls += 1;
        if (calls < 3) throw new Error('auth service down');
        return signToken({ secret: TEST_SECRET, user: 'alice', ttl: 3600 });
      },
      backoff: { minMs: 10, maxMs: 100, factor: 2 },
    });
    const { errors } = track(c);
    c.connect();
    await c.ready(10_000);
    expect(calls).toBe(3);
    expect(errors.map((e) => e.codeName)).toEqual(['TOKEN_UNAVAILABLE', 'TOKEN_UNAVAILABLE']);
    expect(errors[0]!.message).toMatch(/auth service down/);
  });
});
