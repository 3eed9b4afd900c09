/**
 * The publish fast path's reader: one hand-written pass over a `publish` command line (or an
 * HTTP publish body) that checks the envelope and params and keeps `data` as the raw JSON text
 * it arrived as, with no `JSON.parse` of the whole line, no schema pass and no re-serialisation.
 *
 * It only ever accepts or declines. It accepts exactly the lines it can vouch for: valid JSON
 * (checked token by token, the same grammar as `JSON.parse`), the fields and bounds of the
 * `publish` schema (src/protocol/commands.ts), nesting within `maxDepth`. Anything unusual —
 * an escape in a field name or a string param, a duplicate or unknown field, whitespace
 * inside `data`, a number with an exponent, anything malformed — is declined, and the caller
 * takes the full path (parse, schema), which gives the documented error. test/fuzz-publish-scan
 * checks it against `JSON.parse` and the schema.
 */

/**
 * A JSON value kept as its text, spliced where it goes and never parsed and re-encoded on the
 * way: a publication's data read by the fast path (valid, compact JSON), an HTTP response body.
 */
export class RawJson {
  constructor(readonly text: string) {}

  /** The value itself (for hooks and webhooks, which see data as JSON values). */
  value(): unknown {
    return JSON.parse(this.text) as unknown;
  }
}

export interface ScannedPublishParams {
  channel: string;
  data: RawJson;
  idempotencyKey?: string;
  key?: string;
}

export interface ScannedPublish {
  id: number;
  params: ScannedPublishParams;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

const CHANNEL_MAX = 255;
const KEY_MAX = 128;

/** Declines: the caller takes the full path. */
const NO = -1;

/**
 * A whole command line `{"id":N,"method":"publish","params":{...}}` (members in any order);
 * undefined when the fast path declines it.
 */
export function scanPublishCommand(text: string, maxDepth: number): ScannedPublish | undefined {
  if (maxDepth < 2) return undefined;
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== OPEN_BRACE) return undefined;
  i = skipSpace(text, i + 1);
  let id: number | undefined;
  let method = false;
  let params: ScannedPublishParams | undefined;
  for (;;) {
    const member = memberAt(text, i);
    if (member === undefined) return undefined;
    const { name } = member;
    i = member.value;
    if (name === 'id') {
      if (id !== undefined) return undefined;
      const end = positiveInteger(text, i);
      if (end === NO) return undefined;
      id = Number(text.slice(i, end));
      i = end;
    } else if (name === 'method') {
      if (method) return undefined;
      const value = plainString(text, i);
      if (value !== 'publish') return undefined;
      method = true;
      i += value.length + 2;
    } else if (name === 'params') {
      if (params !== undefined) return undefined;
      const scanned = scanParams(text, i, 2, maxDepth);
      if (scanned === undefined) return undefined;
      params = scanned.params;
      i = scanned.end;
    } else return undefined;
    i = skipSpace(text, i);
    const c = text.charCodeAt(i);
    if (c === CLOSE_BRACE) break;
    if (c !== COMMA) return undefined;
    i = skipSpace(text, i + 1);
  }
  if (skipSpace(text, i + 1) !== text.length || id === undefined || !method || params === undefined) return undefined;
  return { id, params };
}

/**
 * An HTTP publish body `{"channel":...,"data":...,"idempotencyKey"?:...}` (the API's schema:
 * no `key`); undefined when the fast path declines it.
 */
export function scanPublishBody(text: string, maxDepth: number): ScannedPublishParams | undefined {
  if (maxDepth < 1) return undefined;
  const start = skipSpace(text, 0);
  const scanned = scanParams(text, start, 1, maxDepth);
  if (scanned === undefined || scanned.params.key !== undefined) return undefined;
  return skipSpace(text, scanned.end) === text.length ? scanned.params : undefined;
}

/** The params object at `i`, itself at nesting `level`. */
function scanParams(text: string, i: number, level: number, maxDepth: number): { params: ScannedPublishParams; end: number } | undefined {
  if (text.charCodeAt(i) !== OPEN_BRACE) return undefined;
  i = skipSpace(text, i + 1);
  let channel: string | undefined;
  let data: RawJson | undefined;
  let idempotencyKey: string | undefined;
  let key: string | undefined;
  for (;;) {
    const member = memberAt(text, i);
    if (member === undefined) return undefined;
    const { name } = member;
    i = member.value;
    if (name === 'data') {
      if (data !== undefined) return undefined;
      const end = jsonValue(text, i, level, maxDepth);
      if (end === NO) return undefined;
      data = new RawJson(text.slice(i, end));
      i = end;
    } else {
      const value = plainString(text, i);
      if (value === undefined || value.length === 0) return undefined;
      if (name === 'channel') {
        if (channel !== undefined || value.length > CHANNEL_MAX) return undefined;
        channel = value;
      } else if (name === 'idempotencyKey') {
        if (idempotencyKey !== undefined || value.length > KEY_MAX) return undefined;
        idempotencyKey = value;
      } else if (name === 'key') {
        if (key !== undefined || value.length > KEY_MAX) return undefined;
        key = value;
      } else return undefined;
      i += value.length + 2;
    }
    i = skipSpace(text, i);
    const c = text.charCodeAt(i);
    if (c === CLOSE_BRACE) break;
    if (c !== COMMA) return undefined;
    i = skipSpace(text, i + 1);
  }
  if (channel === undefined || data === undefined) return undefined;
  const params: ScannedPublishParams = { channel, data };
  if (idempotencyKey !== undefined) params.idempotencyKey = idempotencyKey;
  if (key !== undefined) params.key = key;
  return { params, end: i + 1 };
}

/** An object member's plain name at `i` and where its value starts (past the colon), or undefined. */
function memberAt(text: string, i: number): { name: string; value: number } | undefined {
  const name = plainString(text, i);
  if (name === undefined) return undefined;
  const colon = skipSpace(text, i + name.length + 2);
  if (text.charCodeAt(colon) !== COLON) return undefined;
  return { name, value: skipSpace(text, colon + 1) };
}

function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
    else return i;
  }
}

/** A string at `i` without escapes or control characters: its content, or undefined. */
function plainString(text: string, i: number): string | undefined {
  if (text.charCodeAt(i) !== QUOTE) return undefined;
  const start = i + 1;
  const n = text.length;
  for (let j = start; j < n; j++) {
    const c = text.charCodeAt(j);
    if (c === QUOTE) return text.slice(start, j);
    if (c === BACKSLASH || c < 0x20) return undefined;
  }
  return undefined;
}

/** A positive integer of at most 15 digits (a safe integer) at `i`: its end, or NO. */
function positiveInteger(text: string, i: number): number {
  const first = text.charCodeAt(i);
  if (first <= ZERO || first > NINE) return NO;
  let j = i + 1;
  while (isDigit(text.charCodeAt(j))) j++;
  const c = text.charCodeAt(j);
  if (j - i > 15 || c === DOT || c === 0x65 || c === 0x45) return NO;
  return j;
}

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

function isHex(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/**
 * One compact JSON value at `i` whose container sits at nesting `level`: the index after it,
 * or NO (malformed, whitespace outside strings, an exponent, deeper than `maxDepth`).
 */
function jsonValue(text: string, i: number, level: number, maxDepth: number): number {
  const c = text.charCodeAt(i);
  if (c === QUOTE) return jsonString(text, i);
  if (c === OPEN_BRACE) {
    if (level + 1 > maxDepth) return NO;
    i++;
    if (text.charCodeAt(i) === CLOSE_BRACE) return i + 1;
    for (;;) {
      i = jsonString(text, i);
      if (i === NO || text.charCodeAt(i) !== COLON) return NO;
      i = jsonValue(text, i + 1, level + 1, maxDepth);
      if (i === NO) return NO;
      const d = text.charCodeAt(i);
      if (d === CLOSE_BRACE) return i + 1;
      if (d !== COMMA) return NO;
      i++;
    }
  }
  if (c === OPEN_BRACKET) {
    if (level + 1 > maxDepth) return NO;
    i++;
    if (text.charCodeAt(i) === CLOSE_BRACKET) return i + 1;
    for (;;) {
      i = jsonValue(text, i, level + 1, maxDepth);
      if (i === NO) return NO;
      const d = text.charCodeAt(i);
      if (d === CLOSE_BRACKET) return i + 1;
      if (d !== COMMA) return NO;
      i++;
    }
  }
  if (c === MINUS || isDigit(c)) return jsonNumber(text, i);
  if (text.startsWith('true', i)) return i + 4;
  if (text.startsWith('false', i)) return i + 5;
  if (text.startsWith('null', i)) return i + 4;
  return NO;
}

/** `-?(0|[1-9][0-9]*)(\.[0-9]+)?` — an exponent declines (it may round to Infinity). */
function jsonNumber(text: string, i: number): number {
  if (text.charCodeAt(i) === MINUS) i++;
  const first = text.charCodeAt(i);
  if (first === ZERO) i++;
  else if (first > ZERO && first <= NINE) {
    i++;
    while (isDigit(text.charCodeAt(i))) i++;
  } else return NO;
  if (text.charCodeAt(i) === DOT) {
    i++;
    if (!isDigit(text.charCodeAt(i))) return NO;
    while (isDigit(text.charCodeAt(i))) i++;
  }
  const c = text.charCodeAt(i);
  if (c === 0x65 || c === 0x45 || isDigit(c)) return NO;
  return i;
}

/** A JSON string at `i` (escapes checked, no raw control characters): the index after it, or NO. */
function jsonString(text: string, i: number): number {
  if (text.charCodeAt(i) !== QUOTE) return NO;
  const n = text.length;
  for (i++; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) return i + 1;
    if (c < 0x20) return NO;
    if (c === BACKSLASH) {
      const e = text.charCodeAt(++i);
      if (e === 0x75) {
        if (!isHex(text.charCodeAt(i + 1)) || !isHex(text.charCodeAt(i + 2)) || !isHex(text.charCodeAt(i + 3)) || !isHex(text.charCodeAt(i + 4))) return NO;
        i += 4;
      } else if (e !== QUOTE && e !== BACKSLASH && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) return NO;
    }
  }
  return NO;
}
