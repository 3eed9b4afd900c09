import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';

/** Message types of the y-websocket protocol (the first varuint of every binary message). */
export const MSG_SYNC = 0;
export const MSG_AWARENESS = 1;
export const MSG_AUTH = 2;
export const MSG_QUERY_AWARENESS = 3;

/** Sync sub-messages (y-protocols/sync). */
export const SYNC_STEP1 = 0;
export const SYNC_STEP2 = 1;
export const SYNC_UPDATE = 2;

export type ClientMessage =
  | { kind: 'step1'; stateVector: Uint8Array }
  | { kind: 'step2' | 'update'; update: Uint8Array }
  | { kind: 'awareness'; update: Uint8Array }
  | { kind: 'queryAwareness' };

/** Decodes one client message; throws on a malformed or unknown one. */
export function decodeClientMessage(data: Uint8Array): ClientMessage {
  const d = decoding.createDecoder(data);
  const type = decoding.readVarUint(d);
  switch (type) {
    case MSG_SYNC: {
      const sub = decoding.readVarUint(d);
      const payload = decoding.readVarUint8Array(d);
      if (sub === SYNC_STEP1) return { kind: 'step1', stateVector: payload };
      if (sub === SYNC_STEP2) return { kind: 'step2', update: payload };
      if (sub === SYNC_UPDATE) return { kind: 'update', update: payload };
      throw new Error(`unknown sync message ${sub}`);
    }
    case MSG_AWARENESS:
      return { kind: 'awareness', update: decoding.readVarUint8Array(d) };
    case MSG_QUERY_AWARENESS:
      return { kind: 'queryAwareness' };
    default:
      throw new Error(`unknown message type ${type}`);
  }
}

/**
 * A sync message, written straight into one Buffer (no encoder growing and copying; a Buffer,
 * so a socket sends it as is, without wrapping it once per peer).
 */
function sync(sub: number, payload: Uint8Array): Buffer {
  const n = payload.byteLength;
  let lenBytes = 1;
  for (let v = n; v > 0x7f; v = Math.floor(v / 128)) lenBytes++;
  const out = Buffer.allocUnsafe(2 + lenBytes + n);
  out[0] = MSG_SYNC;
  out[1] = sub;
  let i = 2;
  let v = n;
  while (v > 0x7f) {
    out[i++] = 0x80 | (v & 0x7f);
    v = Math.floor(v / 128);
  }
  out[i++] = v;
  out.set(payload, i);
  return out;
}

export const encodeStep1 = (stateVector: Uint8Array): Uint8Array => sync(SYNC_STEP1, stateVector);
export const encodeStep2 = (update: Uint8Array): Uint8Array => sync(SYNC_STEP2, update);
export const encodeUpdate = (update: Uint8Array): Uint8Array => sync(SYNC_UPDATE, update);

export function encodeAwareness(update: Uint8Array): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MSG_AWARENESS);
  encoding.writeVarUint8Array(e, update);
  return encoding.toUint8Array(e);
}

/**
 * A refusal the y-websocket client understands (y-protocols/auth "permission denied"): the
 * provider logs the reason. The reason starts with our error code, e.g. `120 document is read-only`.
 */
export function encodeDenied(code: number, reason: string): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MSG_AUTH);
  encoding.writeVarUint(e, 0);
  encoding.writeVarString(e, `${code} ${reason}`);
  return encoding.toUint8Array(e);
}

/** An update that changes nothing (what an empty document sends as sync step 2). */
export function isEmptyUpdate(update: Uint8Array): boolean {
  return update.byteLength === 2 && update[0] === 0 && update[1] === 0;
}
