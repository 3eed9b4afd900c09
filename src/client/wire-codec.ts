import { Packr, Unpackr } from 'msgpackr';
import { decodeFrame, encodeCommand, joinFrames, utf8Length, type Command, type Inbound } from './codec.js';
import { fromV2 } from './publication-v2.js';

/** The codecs (docs/protocol.md, Codecs): JSON text frames, or MessagePack binary frames. */
export type CodecName = 'json' | 'msgpack';

/** The protocol version to ask for: 2 (compact publications, the default) or 1. */
export type ProtocolVersion = 1 | 2;

/** One encoded command: a JSON line or a MessagePack value. */
export type Encoded = string | Uint8Array;

/** How the Socket encodes commands, batches them into frames and decodes what the server sends. */
export interface WireCodec {
  /**
   * The WebSocket subprotocols to offer, preferred first (none: JSON v1). A v2 codec offers v1
   * after v2, so a server that speaks only v1 still accepts; its decoder reads both.
   */
  readonly subprotocols: readonly string[] | undefined;
  encode(command: Command): Encoded;
  byteLength(message: Encoded): number;
  /** Joins messages into frames of at most `maxBytes` (a longer message gets a frame of its own). */
  join(messages: readonly Encoded[], maxBytes: number): Encoded[];
  decode(data: unknown, onBad: (what: string) => void): Inbound[];
}

export const jsonCodec: WireCodec = {
  subprotocols: undefined,
  encode: encodeCommand,
  byteLength: (m) => (typeof m === 'string' ? utf8Length(m) : m.byteLength),
  join: (messages, maxBytes) => joinFrames(messages as string[], maxBytes),
  decode(data, onBad) {
    if (typeof data !== 'string') {
      onBad('the server sent a binary frame on a JSON connection');
      return [];
    }
    return decodeFrame(data, (line) => onBad(`undecodable line from the server: ${line.slice(0, 100)}`));
  },
};

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

/** `switchboard.v1.msgpack`: each message one MessagePack map; a frame holds values back to back. */
export const msgpackCodec: WireCodec = {
  subprotocols: ['switchboard.v1.msgpack'],
  encode: (command) => packr.pack(command),
  byteLength: (m) => (typeof m === 'string' ? utf8Length(m) : m.byteLength),
  join(messages, maxBytes) {
    const frames: Uint8Array[] = [];
    let current: Uint8Array[] = [];
    let size = 0;
    const close = (): void => {
      if (current.length > 0) frames.push(concat(current, size));
      current = [];
      size = 0;
    };
    for (const m of messages as Uint8Array[]) {
      if (current.length > 0 && size + m.byteLength > maxBytes) close();
      current.push(m);
      size += m.byteLength;
    }
    close();
    return frames;
  },
  decode(data, onBad) {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : undefined;
    if (!bytes) {
      onBad('the server sent a text frame on a MessagePack connection');
      return [];
    }
    const out: Inbound[] = [];
    try {
      unpackr.unpackMultiple(bytes, (value: unknown) => {
        if (typeof value === 'object' && value !== null && !Array.isArray(value)) out.push(value as Inbound);
        else onBad('a MessagePack value from the server that is not a map');
      });
    } catch (err) {
      onBad(`undecodable MessagePack from the server: ${(err as Error).message}`);
    }
    return out;
  },
};

function concat(parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** A codec of protocol v2: v1's framing, compact publications decoded into v1's shape. */
function v2(base: WireCodec, subprotocols: readonly string[]): WireCodec {
  return {
    ...base,
    subprotocols,
    decode: (data, onBad) => base.decode(data, onBad).map(fromV2),
  };
}

export const jsonV2Codec = v2(jsonCodec, ['switchboard.v2.json', 'switchboard.v1.json']);
export const msgpackV2Codec = v2(msgpackCodec, ['switchboard.v2.msgpack', 'switchboard.v1.msgpack']);

export function wireCodec(name: CodecName | undefined, version: ProtocolVersion = 2): WireCodec {
  if (version === 1) return name === 'msgpack' ? msgpackCodec : jsonCodec;
  return name === 'msgpack' ? msgpackV2Codec : jsonV2Codec;
}
