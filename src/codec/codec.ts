/**
 * The wire codecs and protocol versions, chosen per WebSocket connection by subprotocol. JSON
 * protocol v1 is the default (also when the client asks for none); SSE always speaks JSON v1.
 * v2 differs from v1 only in the form of publications (docs/protocol.md, Protocol v2).
 */
export type CodecName = 'json' | 'msgpack';
export type ProtocolVersion = 1 | 2;

export const SUBPROTOCOL_JSON = 'switchboard.v1.json';
export const SUBPROTOCOL_MSGPACK = 'switchboard.v1.msgpack';
export const SUBPROTOCOL_V2_JSON = 'switchboard.v2.json';
export const SUBPROTOCOL_V2_MSGPACK = 'switchboard.v2.msgpack';

export interface WireChoice {
  /** The subprotocol answered; undefined when the client asked for none. */
  protocol: string | undefined;
  codec: CodecName;
  version: ProtocolVersion;
}

const SUBPROTOCOLS: Readonly<Record<string, Omit<WireChoice, 'protocol'>>> = {
  [SUBPROTOCOL_JSON]: { codec: 'json', version: 1 },
  [SUBPROTOCOL_MSGPACK]: { codec: 'msgpack', version: 1 },
  [SUBPROTOCOL_V2_JSON]: { codec: 'json', version: 2 },
  [SUBPROTOCOL_V2_MSGPACK]: { codec: 'msgpack', version: 2 },
};

/**
 * The subprotocol to answer from the client's `Sec-WebSocket-Protocol` list (in the client's
 * order of preference): JSON v1 without a protocol when it asked for none, and undefined when
 * it asked only for ones this server does not speak (the upgrade is refused).
 */
export function chooseSubprotocol(header: string | undefined): WireChoice | undefined {
  if (header === undefined || header.trim() === '') return { protocol: undefined, codec: 'json', version: 1 };
  for (const part of header.split(',')) {
    const name = part.trim();
    const known = SUBPROTOCOLS[name];
    if (known) return { protocol: name, ...known };
  }
  return undefined;
}

export const SUBPROTOCOL_REFUSAL = `unsupported WebSocket subprotocol: use ${SUBPROTOCOL_V2_JSON}, ${SUBPROTOCOL_V2_MSGPACK}, ${SUBPROTOCOL_JSON} or ${SUBPROTOCOL_MSGPACK}`;
