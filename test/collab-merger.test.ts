import type { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { compactUpdates, UpdateMerger } from '../src/collab/update-merger.js';

function edits(n: number, size: number): Uint8Array[] {
  const d = new Y.Doc();
  const out: Uint8Array[] = [];
  d.on('update', (u: Uint8Array) => out.push(u));
  for (let i = 0; i < n; i++) d.getText('text').insert(0, String(i % 10).repeat(size));
  return out;
}

function textOf(update: Uint8Array): string {
  const d = new Y.Doc();
  Y.applyUpdate(d, update);
  return d.getText('text').toString();
}

describe('compactUpdates (a log into one snapshot)', () => {
  it('keeps every edit of concurrent editors, deletions included, and an update whose dependency is missing', () => {
    const editors = [new Y.Doc(), new Y.Doc(), new Y.Doc()];
    const log: Uint8Array[] = [];
    for (const d of editors) {
      d.on('update', (u: Uint8Array, origin: unknown) => {
        if (origin === 'peer') return;
        log.push(u);
        for (const o of editors) if (o !== d) Y.applyUpdate(o, u, 'peer');
      });
    }
    for (let i = 0; i < 300; i++) {
      const t = editors[i % 3]!.getText('text');
      t.insert((i * 7) % (t.length + 1), String.fromCharCode(97 + (i % 26)));
      if (i % 5 === 0 && t.length > 2) t.delete((i * 3) % (t.length - 1), 1);
    }
    // Two more edits by one editor: the second (a later clock of the same client) depends on the first.
    editors[0]!.getText('text').insert(0, 'A');
    editors[0]!.getText('text').insert(1, 'B');
    const expected = editors[0]!.getText('text').toString();
    const snapshot = compactUpdates(log);
    expect(textOf(snapshot)).toBe(expected);
    expect(textOf(snapshot)).toBe(textOf(Y.mergeUpdates(log)));
    // The first of those held back: the snapshot must keep the second, pending.
    const gap = log.length - 2;
    const partial = compactUpdates([...log.slice(0, gap), log[gap + 1]!]);
    const late = new Y.Doc();
    Y.applyUpdate(late, partial);
    expect(late.store.pendingStructs).not.toBeNull();
    Y.applyUpdate(late, log[gap]!);
    expect(late.getText('text').toString()).toBe(expected);
  });

  it('throws on a malformed update', () => {
    expect(() => compactUpdates([new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x01])])).toThrow();
  });
});

describe('UpdateMerger (compactUpdates in a worker thread)', () => {
  it('merges large inputs off the event loop with the same result as on it, small ones on it, in any mix', async () => {
    const merger = new UpdateMerger(1024);
    try {
      const big = edits(200, 20);
      const small = edits(3, 1);
      const [a, b, c] = await Promise.all([merger.merge(big), merger.merge(small), merger.merge(big.slice(0, 100))]);
      expect(Buffer.from(a)).toEqual(Buffer.from(compactUpdates(big)));
      expect(textOf(b)).toBe(textOf(Y.mergeUpdates(small)));
      expect(textOf(c)).toBe(textOf(Y.mergeUpdates(big.slice(0, 100))));
      // The event loop was free while the worker merged: a timer set now fires before a long merge ends.
      const many = edits(2_000, 20);
      let ticked = false;
      setTimeout(() => (ticked = true), 0);
      const merged = await merger.merge(many);
      expect(textOf(merged)).toBe(textOf(Y.mergeUpdates(many)));
      expect(ticked).toBe(true);
    } finally {
      await merger.close();
    }
  });

  it('a malformed update rejects that merge only; the worker goes on', async () => {
    const merger = new UpdateMerger(16);
    try {
      const garbage = new Uint8Array(4096).fill(0xff);
      await expect(merger.merge([garbage, garbage])).rejects.toThrow();
      const ups = edits(50, 10);
      expect(textOf(await merger.merge(ups))).toBe(textOf(Y.mergeUpdates(ups)));
    } finally {
      await merger.close();
    }
  });

  it('after close (or a worker gone), merges still complete, on the event loop', async () => {
    const merger = new UpdateMerger(16);
    const ups = edits(50, 10);
    const pending = merger.merge(ups);
    await merger.close();
    expect(textOf(await pending)).toBe(textOf(Y.mergeUpdates(ups)));
    expect(textOf(await merger.merge(ups))).toBe(textOf(Y.mergeUpdates(ups)));
  });

  it('a worker that dies mid-merge: its merge completes on the event loop, the next one gets a new worker', async () => {
    const merger = new UpdateMerger(16);
    const internals = merger as unknown as { worker?: Worker };
    try {
      const ups = edits(300, 20);
      const pending = merger.merge(ups);
      const first = internals.worker;
      expect(first).toBeDefined();
      void first!.terminate();
      expect(textOf(await pending)).toBe(textOf(Y.mergeUpdates(ups)));
      expect(textOf(await merger.merge(ups))).toBe(textOf(Y.mergeUpdates(ups)));
      expect(internals.worker).toBeDefined();
      expect(internals.worker).not.toBe(first);
    } finally {
      await merger.close();
    }
  });
});
