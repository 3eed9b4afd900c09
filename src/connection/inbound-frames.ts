import type { CodecName } from '../codec/codec.js';
import { decodeMsgpackFrame } from '../codec/msgpack.js';
import { CloseCode, type CloseCodeValue } from '../protocol/close-codes.js';
import { parseCommandLine } from '../protocol/commands.js';
import { HubError } from '../protocol/errors.js';
import { scanPublishCommand, type ScannedPublish } from '../protocol/publish-scan.js';

/** Where the commands decoded from inbound frames go: one connection. */
export interface InboundSink {
  readonly closed: boolean;
  /** One decoded command (whatever the codec), not yet checked. */
  command(parsed: unknown): void;
  /** A `publish` the fast path read (envelope and params checked, `data` kept as its raw text). */
  publish?(command: ScannedPublish): void;
  /** A frame or command the protocol refuses: answered with `err`, counted as a violation. */
  refuse(code: CloseCodeValue, id: number | undefined, err: HubError): void;
}

/**
 * One inbound text frame: one or more `\n`-separated JSON commands. A MessagePack connection
 * refuses text frames (107).
 */
export function readTextFrame(text: string, codec: CodecName, maxDepth: number, sink: InboundSink): void {
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line !== '') readLine(line, codec, maxDepth, sink);
    if (sink.closed) return;
  }
}

function readLine(line: string, codec: CodecName, maxDepth: number, sink: InboundSink): void {
  if (codec === 'msgpack') {
    sink.refuse(CloseCode.PROTOCOL_ERROR, undefined, new HubError(107, 'text frames are not supported with switchboard.v1.msgpack'));
    return;
  }
  if (sink.publish) {
    const scanned = scanPublishCommand(line, maxDepth);
    if (scanned) {
      sink.publish(scanned);
      return;
    }
  }
  const decoded = parseCommandLine(line, maxDepth);
  if (!decoded.ok) {
    sink.refuse(CloseCode.PROTOCOL_ERROR, decoded.id, decoded.error);
    return;
  }
  sink.command(decoded.value);
}

/**
 * One inbound binary frame of a MessagePack connection: one or more MessagePack values, each
 * one command. On a JSON connection binary frames are refused (107).
 */
export function readBinaryFrame(data: Buffer, codec: CodecName, maxDepth: number, sink: InboundSink): void {
  if (codec !== 'msgpack') {
    refuseBinary(data, sink);
    return;
  }
  for (const decoded of decodeMsgpackFrame(data, maxDepth)) {
    if (decoded.ok) sink.command(decoded.value);
    else sink.refuse(CloseCode.PROTOCOL_ERROR, undefined, decoded.error);
    if (sink.closed) return;
  }
}

/**
 * A binary frame, which the JSON protocol does not allow: each command in it that carries an
 * id is answered with 107, so a client never waits for a reply that cannot come.
 */
export function refuseBinary(data: Buffer, sink: InboundSink): void {
  const text = data.toString('utf8');
  let answered = false;
  for (const line of text.split('\n')) {
    const id = /"id"\s*:\s*(\d{1,15})/.exec(line)?.[1];
    if (id === undefined) continue;
    answered = true;
    sink.refuse(CloseCode.PROTOCOL_ERROR, Number(id), new HubError(107, 'binary frames are not supported: send commands as text frames'));
    if (sink.closed) return;
  }
  if (!answered)
    sink.refuse(CloseCode.PROTOCOL_ERROR, undefined, new HubError(107, 'binary frames are not supported: send commands as text frames'));
}
