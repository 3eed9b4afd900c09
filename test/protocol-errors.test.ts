import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { APP_ERROR_CODE_MIN, CloseCode, ERRORS, HubError, shouldReconnect, UnsubscribeCode } from '../src/index.js';
import { CLOSE_REASONS } from '../src/protocol/close-codes.js';
import { toWireError } from '../src/protocol/errors.js';

const doc = readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8');

/** The rows of the markdown table under `heading`: each row's cells, trimmed. */
function tableUnder(heading: string): string[][] {
  const start = doc.indexOf(`## ${heading}`);
  expect(start, `docs/protocol.md has a "## ${heading}" section`).toBeGreaterThanOrEqual(0);
  const rest = doc.slice(start + heading.length + 3);
  const end = rest.search(/\n## /);
  const section = end === -1 ? rest : rest.slice(0, end);
  return section
    .split('\n')
    .filter((l) => l.startsWith('|') && !/^\|\s*-/.test(l))
    .slice(1) // header row
    .map((l) =>
      l
        .slice(1, l.endsWith('|') ? -1 : undefined)
        .split('|')
        .map((c) => c.trim().replace(/`/g, '')),
    );
}

const entries = Object.entries(ERRORS) as Array<[string, (typeof ERRORS)[keyof typeof ERRORS]]>;

describe('error registry', () => {
  it('every key equals its code', () => {
    for (const [key, spec] of entries) expect(Number(key), spec.name).toBe(spec.code);
  });

  it('codes and names are unique, below the application range, names in UPPER_SNAKE', () => {
    const names = entries.map(([, s]) => s.name);
    expect(new Set(names).size).toBe(names.length);
    for (const [, s] of entries) {
      expect(s.code).toBeLessThan(APP_ERROR_CODE_MIN);
      expect(s.name).toMatch(/^[A-Z][A-Z_]*$/);
      expect(s.message.length).toBeGreaterThan(0);
    }
  });

  it('every code is listed in docs/protocol.md with its name and temporary flag, and the table lists nothing else', () => {
    const rows = tableUnder('Reply error codes');
    const documented = new Map(rows.filter((r) => /^\d+$/.test(r[0]!)).map((r) => [Number(r[0]), r]));
    for (const [, spec] of entries) {
      const row = documented.get(spec.code);
      expect(row, `error ${spec.code} ${spec.name} is missing from docs/protocol.md`).toBeDefined();
      expect(row![1], `name of ${spec.code}`).toBe(spec.name);
      expect(row![2], `temporary flag of ${spec.code}`).toBe(spec.temporary ? 'yes' : 'no');
    }
    for (const code of documented.keys()) expect(Object.hasOwn(ERRORS, code), `docs list unknown error ${code}`).toBe(true);
    expect(doc).toContain(`≥${APP_ERROR_CODE_MIN}`);
  });

  it('HubError takes message and temporary from the registry; toWire keeps only what the wire shows', () => {
    expect(new HubError(111).toWire()).toEqual({ code: 111, message: ERRORS[111].message, temporary: true });
    expect(new HubError(103, 'nope').toWire()).toEqual({ code: 103, message: 'nope' });
    expect(new HubError(4242, 'app', true).toWire()).toEqual({ code: 4242, message: 'app', temporary: true });
    // Anything that is not a HubError becomes an internal error without its details.
    const wire = toWireError(new Error('secret detail'));
    expect(wire).toEqual({ code: 100, message: ERRORS[100].message, temporary: true });
  });
});

describe('close codes', () => {
  const codes = Object.entries(CloseCode) as Array<[string, number]>;

  it('are unique, each has a reason, and each is listed in docs/protocol.md', () => {
    const values = codes.map(([, c]) => c);
    expect(new Set(values).size).toBe(values.length);
    const rows = tableUnder('Close codes');
    const documented = new Set(rows.map((r) => Number(r[0])));
    for (const [name, code] of codes) {
      expect((CLOSE_REASONS as Record<number, string>)[code], `reason for ${name}`).toBeTruthy();
      expect(documented.has(code), `close code ${code} (${name}) is missing from docs/protocol.md`).toBe(true);
    }
    for (const code of documented) expect(values.includes(code), `docs list unknown close code ${code}`).toBe(true);
  });

  it('follow the documented ranges: 4000–4499 reconnect, 4500–4999 terminal, 1007/1008/1009 terminal', () => {
    for (const [, code] of codes) {
      if (code >= 4000 && code < 4500) expect(shouldReconnect(code), String(code)).toBe(true);
      if (code >= 4500) expect(shouldReconnect(code), String(code)).toBe(false);
    }
    expect([1007, 1008, 1009].map(shouldReconnect)).toEqual([false, false, false]);
    expect([1000, 1001].map(shouldReconnect)).toEqual([true, true]);
  });

  it('unsubscribe push codes are documented', () => {
    const rows = tableUnder('Unsubscribe push codes');
    const documented = new Set(rows.map((r) => Number(r[0])));
    for (const code of Object.values(UnsubscribeCode)) expect(documented.has(code), String(code)).toBe(true);
  });
});
