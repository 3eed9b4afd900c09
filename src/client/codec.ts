/**
 * The JSON codec of protocol v1: one frame holds one or more JSON objects separated by "\n".
 */

/** A command the client sends. `id` is absent only for `pong`. */
export interface Command {
  id?: number;
  method: string;
  params?: unknown;
}

/** Anything the server sends, decoded; look at `id` (reply) or `push` (push). */
export interface Inbound {
  id?: number;
  result?: unknown;
  error?: { code: number; message: string; temporary?: boolean };
  push?: string;
  [key: string]: unknown;
}

/**
 * Splits a frame on "\n" and decodes each non-empty line. A line that is not a JSON object is
 * passed to `onBad` (and skipped) so one bad line never hides the others.
 */
export function decodeFrame(text: string, onBad?: (line: string) => void): Inbound[] {
  const out: Inbound[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      onBad?.(line);
      continue;
    }
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) out.push(value as Inbound);
    else onBad?.(line);
  }
  return out;
}

/** Encodes one command as one line (no trailing newline). */
export function encodeCommand(command: Command): string {
  return JSON.stringify(command);
}

/**
 * Joins encoded lines into frames of at most `maxBytes` UTF-8 bytes each (a single longer line
 * gets a frame of its own).
 */
export function joinFrames(lines: readonly string[], maxBytes: number): string[] {
  const frames: string[] = [];
  let current: string[] = [];
  let size = 0;
  for (const line of lines) {
    const bytes = utf8Length(line);
    if (current.length > 0 && size + 1 + bytes > maxBytes) {
      frames.push(current.join('\n'));
      current = [];
      size = 0;
    }
    size += (current.length > 0 ? 1 : 0) + bytes;
    current.push(line);
  }
  if (current.length > 0) frames.push(current.join('\n'));
  return frames;
}

/** UTF-8 length of a string, without allocating. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
