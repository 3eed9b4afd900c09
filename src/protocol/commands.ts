import { z } from 'zod';

/**
 * Client → server commands, protocol v1 (docs/protocol.md). One JSON object per line:
 * `{"id": 1, "method": "subscribe", "params": {...}}`. `id` is a positive integer the reply
 * echoes. `{"method":"pong"}` answers a server ping and carries no id.
 */
export const PROTOCOL_VERSION = 1;

const channel = z.string().min(1).max(255);
const position = z.object({ offset: z.number(), epoch: z.string().max(64) }).strict();
const json = z.unknown().refine((v) => v !== undefined, 'required');

export const paramsSchemas = {
  connect: z.object({ token: z.string().max(16_384).optional(), name: z.string().max(64).optional() }).strict(),
  refresh: z.object({ token: z.string().min(1).max(16_384) }).strict(),
  subscribe: z.object({ channel, since: position.optional() }).strict(),
  unsubscribe: z.object({ channel }).strict(),
  publish: z.object({ channel, data: json, idempotencyKey: z.string().min(1).max(128).optional() }).strict(),
  history: z.object({ channel, since: position.optional(), limit: z.number().int().nonnegative().optional() }).strict(),
  presence: z.object({ channel }).strict(),
  rpc: z.object({ method: z.string().min(1).max(128), data: z.unknown().optional() }).strict(),
  ping: z.object({}).strict(),
  typing: z.object({ channel, typing: z.boolean() }).strict(),
  markRead: z.object({ channel, offset: z.number().int().nonnegative().optional() }).strict(),
  readState: z.object({ channel }).strict(),
  readers: z.object({ channel }).strict(),
  setStatus: z.object({ status: z.enum(['online', 'away', 'busy']) }).strict(),
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
