#!/usr/bin/env node
// Bundles the client SDK (src/client/index.ts) for browsers: one ESM file at
// dist/browser/switchboard-client.js, served by the hub at GET /client.js.
// `ws` (the Node WebSocket) is replaced by an empty module: browsers use their own WebSocket.
/* global URL, console, process */
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Resolves `ws` to a stub so it never ends up in the bundle. */
const noWs = {
  name: 'no-ws',
  setup(b) {
    b.onResolve({ filter: /^ws$/ }, () => ({ path: 'ws', namespace: 'no-ws' }));
    b.onLoad({ filter: /.*/, namespace: 'no-ws' }, () => ({
      contents: 'export const WebSocket = undefined; export default undefined;',
      loader: 'js',
    }));
  },
};

/** Options both browser bundles share. */
const common = {
  absWorkingDir: root,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  sourcemap: true,
  legalComments: 'none',
  minify: true,
  plugins: [noWs],
  metafile: true,
  logLevel: 'warning',
};

const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/client/index.ts'],
  outfile: 'dist/browser/switchboard-client.js',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  sourcemap: true,
  legalComments: 'none',
  minify: true,
  plugins: [noWs],
  metafile: true,
  logLevel: 'warning',
});

const inputs = Object.keys(result.metafile.inputs);
if (inputs.some((p) => p.includes('node_modules/ws/'))) {
  console.error('bundle-client: ws leaked into the browser bundle');
  process.exit(1);
}
const out = result.metafile.outputs['dist/browser/switchboard-client.js'];
console.log(`bundle-client: dist/browser/switchboard-client.js (${out.bytes} bytes)`);

// The collaborative-editing bundle (Yjs + Awareness + DocumentProvider), served at /collab-client.js.
const collab = await build({
  ...common,
  entryPoints: ['src/client/collab-browser.ts'],
  outfile: 'dist/browser/switchboard-collab.js',
});
const yjsCopies = new Set(Object.keys(collab.metafile.inputs).filter((p) => /node_modules\/yjs\/dist\/yjs\.mjs$/.test(p)));
if (yjsCopies.size !== 1) {
  console.error(`bundle-client: the collab bundle must hold exactly one copy of yjs (found ${yjsCopies.size})`);
  process.exit(1);
}
const collabOut = collab.metafile.outputs['dist/browser/switchboard-collab.js'];
console.log(`bundle-client: dist/browser/switchboard-collab.js (${collabOut.bytes} bytes)`);
