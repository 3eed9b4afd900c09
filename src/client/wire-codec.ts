import { Packr, Unpackr } from 'msgpackr';
import { decodeFrame, encodeCommand, joinFrames, utf8Length, type Command, type Inbound } from './codec.js';

/** The codecs of protocol v1 (docs/protocol.md, Codecs): JSON text frames, or MessagePack binary frames. */
export type CodecName = 'json' | 'msgpack';

/** One encoded command: a JSON line or a MessagePack value. */
export type Encoded = string | Uint8Array;

/** How the Socket encodes commands, batches them into frames and decodes what the server sends. */
export interface WireCodec {
  /** The WebSocket subprotocol to ask for (none for JSON, the default). */
  readonly subprotocol: string | undefined;
  encode(command: Command): Encoded;
  byteLength(message: Encoded): number;
  /** Joins messages into frames of at most `maxBytes` (a longer message gets a frame of its own). */
  join(messages: readonly Encoded[], maxBytes: number): Encoded[];
  decode(data: unknown, onBad: (what: string) => void): Inbound[];
}

export const jsonCodec: WireCodec = {
  subprotocol: undefined,
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
  subprotocol: 'switchboard.v1.msgpack',
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

export function wireCodec(name: CodecName | undefined): WireCodec {
  return name === 'msgpack' ? msgpackCodec : jsonCodec;
}
