import { Packr, Unpackr } from 'msgpackr';
import { HubError } from '../protocol/errors.js';

/**
 * MessagePack (protocol `switchboard.v1.msgpack`): every message the JSON codec writes as one
 * JSON object is one MessagePack map with the same keys and values (docs/protocol.md). Maps
 * are plain string-keyed maps (no msgpackr records or extensions), so any MessagePack library
 * decodes them. Binary (`bin`) values travel as they are; inside the hub, and to JSON clients,
 * they are the JSON object `{"$binary": "<base64>"}`.
 */
const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/** The JSON spelling of a binary value: `{"$binary": "<base64>"}`, its only key. */
export const BINARY_KEY = '$binary';
const BINARY_MARK = Buffer.from(`"${BINARY_KEY}"`);

/** The MessagePack form of frames made once per broadcast, keyed by their JSON Buffer. */
const memo = new WeakMap<Buffer, Buffer>();

/**
 * The MessagePack encoding of one JSON message (a push or a reply the hub encoded as JSON).
 * A Buffer shared by many receivers (a publication or event push, encoded once per broadcast)
 * is transcoded once: every MessagePack receiver gets the same bytes.
 */
export function jsonToMsgpack(json: Buffer): Buffer {
  const known = memo.get(json);
  if (known) return known;
  let value = JSON.parse(json.toString('utf8')) as unknown;
  if (json.includes(BINARY_MARK)) value = reviveBinary(value);
  const packed = packr.pack(value);
  memo.set(json, packed);
  return packed;
}

/** `{"$binary": base64}` objects become bytes, everything else stays. */
function reviveBinary(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = reviveBinary(value[i]);
    return value;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 1 && keys[0] === BINARY_KEY && typeof obj[BINARY_KEY] === 'string') {
    return Buffer.from(obj[BINARY_KEY], 'base64');
  }
  for (const k of keys) obj[k] = reviveBinary(obj[k]);
  return obj;
}

export type DecodedValue = { ok: true; value: unknown } | { ok: false; error: HubError };

/**
 * Decodes one binary frame: one or more MessagePack values back to back. Each value is made
 * JSON-clean (bytes become `{"$binary": base64}`; maps must have string keys; nesting is bounded
 * by `maxDepth`, as for JSON). Values before a malformed one are kept; the rest of the frame
 * after it cannot be framed and is answered with one 107.
 */
export function decodeMsgpackFrame(data: Uint8Array, maxDepth: number): DecodedValue[] {
  const out: DecodedValue[] = [];
  try {
    unpackr.unpackMultiple(data, (value: unknown) => {
      out.push(toJsonValue(value, maxDepth));
    });
  } catch (err) {
    const tooDeep = err instanceof RangeError;
    out.push({
      ok: false,
      error: new HubError(107, tooDeep ? `MessagePack nesting depth over ${maxDepth} (limits.maxJsonDepth)` : 'malformed MessagePack'),
    });
  }
  return out;
}

function toJsonValue(value: unknown, maxDepth: number): DecodedValue {
  try {
    return { ok: true, value: clean(value, 0, maxDepth) };
  } catch (err) {
    if (err instanceof HubError) return { ok: false, error: err };
    throw err;
  }
}

function clean(value: unknown, depth: number, maxDepth: number): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new HubError(107, 'MessagePack: NaN and Infinity are not allowed');
    return value;
  }
  if (value === undefined) return null;
  if (typeof value !== 'object') throw new HubError(107, `MessagePack: unsupported ${typeof value} value`);
  if (depth >= maxDepth) throw new HubError(107, `MessagePack nesting depth over ${maxDepth} (limits.maxJsonDepth)`);
  if (value instanceof Uint8Array) return { [BINARY_KEY]: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (Array.isArray(value)) return value.map((v) => clean(v, depth + 1, maxDepth));
  if (value instanceof Date) return value.toISOString();
  if (Object.getPrototypeOf(value) !== Object.prototype) throw new HubError(107, 'MessagePack: maps must have string keys');
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = clean(v, depth + 1, maxDepth);
  return out;
}
