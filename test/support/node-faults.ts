/**
 * Helpers of the Node fault tests (test/faults-node-broker.test.ts, faults-node-stores.test.ts):
 * a real server whose storage seams are the fault-injecting doubles of test/support/faults.ts,
 * and the checks both files make.
 *
 * "Exactly one reply" is checked with a sentinel: a `ping` sent after the command. Commands of
 * one connection run in order, so once the ping is answered every reply to the command before
 * it has been written; the test then counts the replies carrying the command's id.
 */
import { afterEach, expect } from 'vitest';
import { HubError } from '../../src/index.js';
import { faultyBackends, type FaultyBackends } from './faults.js';
import { closeAllServers, createTestServer, type TestServer } from './harness.js';
import type { ProtocolClient, ServerMessage } from './protocol-client.js';

/** How long a subscribe whose broker call hangs may take to be answered with 114. */
export const HANG_BOUND_MS = 12_000;

const namespaces = {
  chat: {},
  room: { presence: true, joinLeave: true, typing: true, readReceipts: true },
};

export type FaultySetup = (options?: Record<string, unknown>) => Promise<FaultyBackends & { server: TestServer }>;

/**
 * Registers an afterEach that resets the faults (so no hung call holds the close) and closes
 * every server; returns `setup`, which starts a server over fresh faulty backends.
 */
export function useFaultyServers(): FaultySetup {
  let backends: FaultyBackends | undefined;

  afterEach(async () => {
    backends?.reset();
    backends = undefined;
    await closeAllServers();
  });

  return async (options = {}) => {
    const b = faultyBackends();
    backends = b;
    const server = await createTestServer({ ...b.options, namespaces, ...options });
    return { ...b, server };
  };
}

/** Every reply (result or error) that carried `id`. */
export function repliesTo(client: ProtocolClient, id: number): ServerMessage[] {
  return client.messages.filter((m) => m.id === id && m.push === undefined);
}

/** Sends a command and waits for its first reply; returns the id and that reply. */
export async function send(
  client: ProtocolClient,
  method: string,
  params: unknown,
  timeoutMs?: number,
): Promise<{ id: number; reply: ServerMessage }> {
  const id = client.id();
  const reply = await client.requestRaw(id, JSON.stringify({ id, method, params }), timeoutMs);
  return { id, reply };
}

/** The sentinel: a ping answered means everything queued before it was answered. */
export async function sentinel(client: ProtocolClient): Promise<void> {
  expect(await client.call('ping', {})).toEqual({});
}

/** Polls `read` (async) until `ok` holds or `timeoutMs` passed; returns the last value read. */
export async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const channelIs =
  (name: string) =>
  (channel: string): boolean =>
    channel === name;

export const errorCases = [
  { what: 'a plain Error', error: new Error('disk on fire: /var/secret'), code: 100 },
  { what: 'HubError(114)', error: new HubError(114), code: 114 },
] as const;

/** The reply is a temporary error with `code` (or one of `codes`), without internals. */
export function expectTemporaryError(reply: ServerMessage, code: number | readonly number[]): void {
  expect(reply.result, `expected an error, got ${JSON.stringify(reply)}`).toBeUndefined();
  expect(typeof code === 'number' ? [code] : code, JSON.stringify(reply.error)).toContain(reply.error?.code);
  expect(reply.error).toMatchObject({ temporary: true });
  expect(reply.error!.message).not.toContain('disk on fire'); // internals never leak
}
