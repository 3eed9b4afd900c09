import { z } from 'zod';
import { HubError } from './errors.js';

/**
 * Client → server commands, protocol v1 (docs/protocol.md). One JSON object per line:
 * `{"id": 1, "method": "subscribe", "params": {...}}`. `id` is a positive integer the reply
 * echoes. `{"method":"pong"}` answers a server ping and carries no id.
 */
export const PROTOCOL_VERSION = 1;

const channel = z.string().min(1).max(255);
const position = z.object({ offset: z.number(), epoch: z.string().max(64) }).strict();
/** Bytes: `{"$binary": "<base64>"}` in JSON, a MessagePack bin value on `switchboard.v1.msgpack`. */
const binary = z.object({ $binary: z.string().min(1) }).strict();
const json = z.unknown().refine((v) => v !== undefined, 'required');

export const paramsSchemas = {
  connect: z
    .object({
      token: z.string().max(16_384).optional(),
      name: z.string().max(64).optional(),
      // Server-side subscriptions to recover: where the client stands in each (docs/protocol.md).
      subs: z
        .record(channel, z.object({ since: position.optional() }).strict())
        .refine((subs) => Object.keys(subs).length <= 1000, 'at most 1000 channels')
        .optional(),
    })
    .strict(),
  refresh: z.object({ token: z.string().min(1).max(16_384) }).strict(),
  subscribe: z.object({ channel, since: position.optional() }).strict(),
  unsubscribe: z.object({ channel }).strict(),
  publish: z
    .object({ channel, data: json, idempotencyKey: z.string().min(1).max(128).optional(), key: z.string().min(1).max(128).optional() })
    .strict(),
  history: z.object({ channel, since: position.optional(), limit: z.number().int().nonnegative().optional() }).strict(),
  presence: z.object({ channel }).strict(),
  rpc: z.object({ method: z.string().min(1).max(128), data: z.unknown().optional() }).strict(),
  ping: z.object({}).strict(),
  typing: z.object({ channel, typing: z.boolean() }).strict(),
  markRead: z.object({ channel, offset: z.number().int().nonnegative().optional() }).strict(),
  readState: z.object({ channel }).strict(),
  readers: z.object({ channel }).strict(),
  setStatus: z.object({ status: z.enum(['online', 'away', 'busy']) }).strict(),
  emit: z.object({ channel, data: json, key: z.string().min(1).max(128).optional() }).strict(),
  /** One y-protocols message for a document channel (docs/collab.md). */
  doc: z.object({ channel, message: binary }).strict(),
  leaveDoc: z.object({ channel }).strict(),
  statuses: z.object({ users: z.array(z.string().min(1).max(1024)).min(1).max(100) }).strict(),
} as const;

export type Method = keyof typeof paramsSchemas;
export type Params<M extends Method> = z.output<(typeof paramsSchemas)[M]>;

export interface Envelope {
  id?: number;
  method: string;
  params?: unknown;
}

/** Checks the outer shape of one decoded command; params are checked per method later. */
export function readEnvelope(value: unknown): Envelope | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'command must be a JSON object';
  const v = value as Record<string, unknown>;
  if (typeof v.method !== 'string') return 'method: expected a string';
  if (v.id !== undefined && (typeof v.id !== 'number' || !Number.isSafeInteger(v.id) || v.id <= 0)) {
    return 'id: expected a positive integer';
  }
  for (const key of Object.keys(v)) {
    if (key !== 'id' && key !== 'method' && key !== 'params') return `unknown field: ${key}`;
  }
  const env: Envelope = { method: v.method, params: v.params };
  if (v.id !== undefined) env.id = v.id as number;
  return env;
}

export function isMethod(name: string): name is Method {
  return Object.hasOwn(paramsSchemas, name);
}

/** Validates params for a method; returns them or a message naming the bad field. */
export function parseParams<M extends Method>(method: M, params: unknown): { ok: true; params: Params<M> } | { ok: false; error: string } {
  const result = paramsSchemas[method].safeParse(params ?? {});
  if (result.success) return { ok: true, params: result.data as Params<M> };
  const issue = result.error.issues[0];
  const where = issue && issue.path.length ? `params.${issue.path.join('.')}` : 'params';
  return { ok: false, error: `${where}: ${issue?.message ?? 'invalid'}` };
}

/** Default of `limits.maxJsonDepth`: how deep client JSON may nest (a command line, an HTTP body). */
export const DEFAULT_MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const COMMA = 0x2c;

/**
 * Whether JSON `text` nests arrays and objects more than `max` levels deep (`{}` is one level,
 * `{"a":[]}` two). One scan of the raw text, counting `[` and `{` outside strings, meant to run
 * BEFORE `JSON.parse`: deeply nested values parse, but later recursion over them
 * (`JSON.stringify`, validation) overflows the stack. Malformed text is not detected here;
 * `JSON.parse` still has to refuse it.
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      for (i++; i < n; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > max) return true;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--;
    }
  }
  return false;
}

/** The 107 for client JSON nested deeper than `max` (`what` names the part: `body`, or nothing for a command). */
export function jsonDepthError(max: number, what?: string): HubError {
  return new HubError(107, `${what ? `${what}: ` : ''}JSON nesting depth over ${max} (limits.maxJsonDepth)`);
}

export type ParsedLine = { ok: true; value: unknown } | { ok: false; id?: number; error: HubError };

/**
 * Decodes one command line with the nesting bounded to `maxDepth` (`limits.maxJsonDepth`):
 * checks the depth first (without parsing), then parses. A line nested too deep gets 107 with
 * the command's top-level `id` when it has a plain positive integer one, so the client can
 * match the error to its command; a malformed line gets 107 without an id.
 */
export function parseCommandLine(text: string, maxDepth: number): ParsedLine {
  if (jsonDepthExceeds(text, maxDepth)) {
    const id = topLevelId(text);
    return id === undefined ? { ok: false, error: jsonDepthError(maxDepth) } : { ok: false, id, error: jsonDepthError(maxDepth) };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, error: new HubError(107, 'malformed JSON') };
  }
}

const NUMBER_AT = /\s*:\s*(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/y;

/**
 * The `id` member of a JSON object's top level, read without parsing (the text may be too deep
 * to parse safely): a key spelled exactly `"id"` whose value is a positive safe integer.
 */
function topLevelId(text: string): number | undefined {
  let depth = 0;
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const start = i + 1;
      for (i++; i < n; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
      if (depth === 1 && expectKey) {
        expectKey = false;
        if (i - start === 2 && text.startsWith('id', start)) {
          NUMBER_AT.lastIndex = i + 1;
          const m = NUMBER_AT.exec(text);
          const id = m ? Number(m[1]) : NaN;
          return Number.isSafeInteger(id) && id > 0 ? id : undefined;
        }
      }
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      depth++;
      if (depth === 1 && c === OPEN_BRACKET) return undefined;
      expectKey = depth === 1;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--;
      if (depth <= 0) return undefined;
    } else if (c === COMMA && depth === 1) {
      expectKey = true;
    }
  }
  return undefined;
}
