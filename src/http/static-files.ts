import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json; charset=utf-8',
};

/** GET, or HEAD (answered without a body); anything else is not a static-file request. */
export function staticMethod(method: string | undefined): 'GET' | 'HEAD' | undefined {
  return method === 'GET' || method === 'HEAD' ? method : undefined;
}

/**
 * Serves files under one directory (demo pages, client bundle); never outside it. `head`: answer
 * a HEAD request, with the headers a GET would get and no body.
 */
export async function serveStatic(root: string, pathname: string, res: ServerResponse, head = false): Promise<boolean> {
  let rel: string;
  try {
    rel = decodeURIComponent(pathname);
  } catch {
    return false;
  }
  if (rel.endsWith('/')) rel += 'index.html';
  const file = normalize(join(root, rel));
  if (!file.startsWith(normalize(root + sep)) && file !== normalize(root)) return false;
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) return false;
  res.writeHead(200, {
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    'Content-Length': info.size,
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
  });
  if (head) res.end();
  else createReadStream(file).pipe(res);
  return true;
}
