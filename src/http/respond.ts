import type { IncomingMessage, ServerResponse } from 'node:http';
import { DEFAULT_MAX_JSON_DEPTH, jsonDepthError, jsonDepthExceeds } from '../protocol/commands.js';
import { HubError, httpStatusOf, toWireError } from '../protocol/errors.js';

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

/** Sends a thrown error as `{"error": {code, message}}` with a matching HTTP status. */
export function sendError(res: ServerResponse, err: unknown): void {
  const wire = toWireError(err);
  const status = err instanceof HubError ? httpStatusOf(err.code, err.temporary) : 500;
  sendJson(res, status, { error: wire });
}

/**
 * Reads a JSON request body of at most `maxBytes`, nested at most `maxDepth` levels
 * (`limits.maxJsonDepth`, checked before parsing); HubError 107 for anything malformed.
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number, maxDepth: number = DEFAULT_MAX_JSON_DEPTH): Promise<unknown> {
  return parseJsonBody(await readBodyText(req, maxBytes), maxDepth);
}

/** A request body of at most `maxBytes`, as text; HubError 107 when larger. */
export async function readBodyText(req: IncomingMessage, maxBytes: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw new HubError(107, `body: larger than ${maxBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new HubError(107, `body: larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8');
}

/** A body's JSON, nested at most `maxDepth` levels (checked before parsing); HubError 107 for anything malformed. */
export function parseJsonBody(text: string, maxDepth: number): unknown {
  if (text.trim() === '') throw new HubError(107, 'body: expected a JSON object');
  if (jsonDepthExceeds(text, maxDepth)) throw jsonDepthError(maxDepth, 'body');
  try {
    return JSON.parse(text);
  } catch {
    throw new HubError(107, 'body: malformed JSON');
  }
}
