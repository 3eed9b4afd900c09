/**
 * The wire codecs of protocol v1, chosen per WebSocket connection by subprotocol. JSON is the
 * default (also when the client asks for none); SSE always speaks JSON.
 */
export type CodecName = 'json' | 'msgpack';

export const SUBPROTOCOL_JSON = 'switchboard.v1.json';
export const SUBPROTOCOL_MSGPACK = 'switchboard.v1.msgpack';

const SUBPROTOCOLS: Readonly<Record<string, CodecName>> = {
  [SUBPROTOCOL_JSON]: 'json',
  [SUBPROTOCOL_MSGPACK]: 'msgpack',
};

/**
 * The subprotocol to answer from the client's `Sec-WebSocket-Protocol` list (in the client's
 * order of preference): `{ protocol: undefined, codec: 'json' }` when it asked for none, and
 * undefined when it asked only for ones this server does not speak (the upgrade is refused).
 */
export function chooseSubprotocol(header: string | undefined): { protocol: string | undefined; codec: CodecName } | undefined {
  if (header === undefined || header.trim() === '') return { protocol: undefined, codec: 'json' };
  for (const part of header.split(',')) {
    const name = part.trim();
    const codec = SUBPROTOCOLS[name];
    if (codec) return { protocol: name, codec };
  }
  return undefined;
}

export const SUBPROTOCOL_REFUSAL = `unsupported WebSocket subprotocol: use ${SUBPROTOCOL_JSON} or ${SUBPROTOCOL_MSGPACK}`;
