import type { IncomingMessage } from 'node:http';

/**
 * The request target as a URL, or undefined when it is not one (WHATWG URL refuses targets such
 * as `//a:b/x`): such a request is answered 400, never thrown out of a handler.
 */
export function requestUrl(req: IncomingMessage): URL | undefined {
  try {
    return new URL(req.url ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}
