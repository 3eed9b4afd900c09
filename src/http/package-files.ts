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
