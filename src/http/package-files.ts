import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Root of the switchboard package (this file sits at src/http or dist/http in it). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where `npm run build` writes the browser bundle of the client SDK, served at /client.js. */
export const CLIENT_BUNDLE_DIR = `${PACKAGE_ROOT}dist/browser`;
export const CLIENT_BUNDLE_PATH = '/client.js';
export const CLIENT_BUNDLE_FILE = 'switchboard-client.js';

/** The collaborative-editing browser bundle (Yjs, Awareness, DocumentProvider), served at /collab-client.js. */
export const COLLAB_BUNDLE_PATH = '/collab-client.js';
export const COLLAB_BUNDLE_FILE = 'switchboard-collab.js';
let version: string | undefined;
/** The package's version, from its package.json ('unknown' when unreadable). */
export function packageVersion(): string {
  if (version === undefined) {
    try {
      version = String((JSON.parse(readFileSync(`${PACKAGE_ROOT}package.json`, 'utf8')) as { version?: unknown }).version);
    } catch {
      version = 'unknown';
    }
  }
  return version;
}
