import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = new URL('../src/', import.meta.url).pathname;

/** Folder → the folders its modules import (relative imports only), for every folder of src/. */
function folderImports(): Map<string, Set<string>> {
  const edges = new Map<string, Set<string>>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (path.endsWith('.ts')) {
        const from = relative(SRC, path).split('/')[0]!;
        for (const m of readFileSync(path, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
          const to = relative(SRC, normalize(join(dirname(path), m[1]!))).split('/')[0]!;
          if (to === from || to.endsWith('.js')) continue;
          if (!edges.has(from)) edges.set(from, new Set());
          edges.get(from)!.add(to);
        }
      }
    }
  };
  walk(SRC);
  return edges;
}

/** Every cycle between folders, each as a path `a -> b -> … -> a`. */
function cycles(edges: Map<string, Set<string>>): string[] {
  const found = new Set<string>();
  for (const [start, targets] of edges) {
    for (const first of targets) {
      // Breadth-first from `first` back to `start`.
      const queue: string[][] = [[start, first]];
      const seen = new Set([first]);
      while (queue.length > 0) {
        const path = queue.shift()!;
        const at = path.at(-1)!;
        if (at === start) {
          found.add(path.join(' -> '));
          break;
        }
        for (const next of edges.get(at) ?? []) {
          if (!seen.has(next)) {
            seen.add(next);
            queue.push([...path, next]);
          }
        }
      }
    }
  }
  return [...found];
}

describe('architecture', () => {
  it('no folder of src/ imports another in a circle', () => {
    const edges = folderImports();
    expect(edges.size).toBeGreaterThan(10);
    expect(cycles(edges)).toEqual([]);
  });

  it('data flows one way: the core (hub/) never imports a transport, a connection, the HTTP layer or the server', () => {
    const hub = folderImports().get('hub') ?? new Set();
    for (const upper of ['transport', 'connection', 'http', 'server', 'cli']) expect(hub.has(upper), upper).toBe(false);
  });

  it('finds a cycle when there is one (the check itself can fail)', () => {
    const edges = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['a'])],
    ]);
    expect(cycles(edges)).toEqual(['a -> b -> a', 'b -> a -> b']);
  });
});
