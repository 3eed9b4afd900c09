import { describe, expect, it } from 'vitest';
import * as client from '../src/client/constants.js';
import { CloseCode, shouldReconnect, UnsubscribeCode } from '../src/protocol/close-codes.js';
import { ERRORS } from '../src/protocol/errors.js';
import { PROTOCOL_VERSION } from '../src/protocol/commands.js';

/**
 * The SDK keeps its own copy of the protocol's codes (it imports nothing from the server, so it
 * bundles alone). This keeps the copy honest: every server code is known to the client with the
 * same value and the same reconnect rule.
 */
describe('client protocol constants agree with the server', () => {
  it('has the same protocol version, close codes and unsubscribe codes', () => {
    expect(client.PROTOCOL_VERSION).toBe(PROTOCOL_VERSION);
    for (const [name, code] of Object.entries(CloseCode)) expect((client.CloseCode as Record<string, number>)[name], name).toBe(code);
    for (const [name, code] of Object.entries(UnsubscribeCode))
      expect((client.UnsubscribeCode as Record<string, number>)[name], name).toBe(code);
  });

  it('decides reconnects the same way for every code', () => {
    for (let code = 1000; code <= 4999; code++) expect(client.shouldReconnect(code), String(code)).toBe(shouldReconnect(code));
  });

  it('knows every server error code and which are temporary', () => {
    for (const spec of Object.values(ERRORS)) {
      expect((client.ServerErrorCode as Record<string, number>)[spec.name], spec.name).toBe(spec.code);
      expect(client.TEMPORARY_SERVER_CODES.has(spec.code), spec.name).toBe(spec.temporary);
    }
  });
});
