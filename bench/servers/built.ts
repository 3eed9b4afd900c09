/**
 * The server as users run it: the compiled `dist/` (what `switchboard serve` and the npm package
 * run), not the sources through tsx. tsx compiles with esbuild's keepNames, which wraps every
 * function and closure in a `__name` call that defines a `name` property: more CPU per closure
 * made and about 1 KB more heap per connection, costs no user pays. `npm run bench` builds first;
 * a dist/ older than a source file is refused rather than measured.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../proc/child.js';

type HubModule = typeof import('../../src/index.js');

/** The path of a built file (relative to dist/), checked to be newer than every source. */
export function builtPath(relative: string): string {
  const file = join(REPO_ROOT, 'dist', relative);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` (npm run bench does)`);
  if (statSync(file).mtimeMs < newestMtime(join(REPO_ROOT, 'src'))) {
    throw new Error(`${file} is older than src/: run \`npm run build\` (npm run bench does)`);
  }
  return file;
}

/** The package's main module, from dist/. */
export async function importHub(): Promise<HubModule> {
  return (await import(pathToFileURL(builtPath('index.js')).href)) as HubModule;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}
