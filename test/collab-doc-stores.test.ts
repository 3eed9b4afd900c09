import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { MemoryDocStore, type DocStore } from '../src/collab/doc-store.js';
import { RedisDocStore } from '../src/collab/redis-docs.js';
import { SqliteDocStore } from '../src/collab/sqlite-docs.js';
import { openDatabase } from '../src/store/sqlite-db.js';

/** One contract for every DocStore: sequence numbers, reads since a sequence, compaction from what is stored. */
const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const dirs: string[] = [];
const redis = new Redis(REDIS_URL);
const prefix = `sbtest-docstore-${randomUUID()}`;

afterAll(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

const stores: Array<[string, () => DocStore]> = [
  ['memory', () => new MemoryDocStore()],
  [
    'sqlite',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'sb-docstore-'));
      dirs.push(dir);
      return new SqliteDocStore(openDatabase(dir));
    },
  ],
  ['redis', () => new RedisDocStore(redis, `${prefix}:${randomUUID()}`, 2_000)],
];

function edits(n: number): Uint8Array[] {
  const d = new Y.Doc();
  const out: Uint8Array[] = [];
  d.on('update', (u: Uint8Array) => out.push(u));
  for (let i = 0; i < n; i++) d.getText('text').insert(i, String(i % 10));
  return out;
}

function textOf(updates: readonly Uint8Array[]): string {
  const d = new Y.Doc();
  for (const u of updates) Y.applyUpdate(d, u);
  return d.getText('text').toString();
}

describe.each(stores)('DocStore contract: %s', (_name, make) => {
  it('numbers updates 1, 2, 3…, reads all or since a sequence, and compacts into an equal snapshot', async () => {
    const store = make();
    const ups = edits(10);
    expect(await store.load('d')).toEqual({ updates: [], seq: 0, bytes: 0 });
    for (const [i, u] of ups.slice(0, 6).entries()) expect(await store.append('d', u)).toBe(i + 1);
    expect(await store.head('d')).toBe(6);
    const tail = await store.since('d', 4);
    expect(tail.seq).toBe(6);
    expect(tail.updates).toHaveLength(2);
    const snapshot = await store.compact('d', (u) => Y.mergeUpdates(u));
    expect(snapshot).toBeDefined();
    expect(await store.compact('d', (u) => Y.mergeUpdates(u))).toBeUndefined();
    expect(await store.head('d')).toBe(6);
    for (const u of ups.slice(6)) await store.append('d', u);
    expect(await store.head('d')).toBe(10);
    const all = await store.load('d');
    expect(all.seq).toBe(10);
    expect(all.updates).toHaveLength(5);
    expect(textOf(all.updates)).toBe('0123456789');
    // Since a sequence the snapshot covers: everything (snapshot + log), never a gap.
    expect(textOf((await store.since('d', 3)).updates)).toBe('0123456789');
    expect((await store.since('d', 8)).updates).toHaveLength(2);
    // Other documents are apart.
    expect((await store.load('other')).seq).toBe(0);
  });

  it('appends issued together (one event-loop turn, two documents) are numbered in the order issued and all stored', async () => {
    const store = make();
    const a = edits(30);
    const b = edits(20);
    const seqs = await Promise.all([...a.map((u) => store.append('a', u)), ...b.map((u) => store.append('b', u))]);
    expect(seqs).toEqual([...a.map((_, i) => i + 1), ...b.map((_, i) => i + 1)]);
    expect(textOf((await store.load('a')).updates)).toBe(textOf(a));
    expect((await store.load('b')).seq).toBe(20);
    // After a compaction the numbering goes on past the snapshot.
    await store.compact('a', (u) => Y.mergeUpdates(u));
    expect(await Promise.all(edits(2).map((u) => store.append('a', u)))).toEqual([31, 32]);
  });

  it('an asynchronous merge (the worker thread): appends and reads go on meanwhile, and only what was read is replaced', async () => {
    const store = make();
    expect(store.asyncMerge).toBe(true);
    const ups = edits(12);
    for (const u of ups.slice(0, 8)) await store.append('d', u);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const compacted = store.compact('d', async (parts) => {
      await held;
      return Y.mergeUpdates(parts);
    });
    await new Promise((r) => setTimeout(r, 20));
    // While the merge runs: appends get the next numbers, reads see the whole document.
    for (const [i, u] of ups.slice(8).entries()) expect(await store.append('d', u)).toBe(9 + i);
    expect(textOf((await store.load('d')).updates)).toBe(textOf(ups));
    release();
    expect(await compacted).toBeDefined();
    const after = await store.load('d');
    expect(after.seq).toBe(12);
    // The snapshot (of the first 8) and the 4 appended meanwhile, none lost.
    expect(after.updates).toHaveLength(5);
    expect(textOf(after.updates)).toBe(textOf(ups));
    expect((await store.since('d', 10)).updates).toHaveLength(2);
    expect(await store.append('d', edits(1)[0]!)).toBe(13);
  });

  it('two compactions at once: the one that finds the base changed stores nothing', async () => {
    const store = make();
    const ups = edits(6);
    for (const u of ups) await store.append('d', u);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const slow = store.compact('d', async (parts) => {
      await held;
      return Y.mergeUpdates(parts);
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(await store.compact('d', (parts) => Y.mergeUpdates(parts))).toBeDefined();
    release();
    expect(await slow).toBeUndefined();
    const all = await store.load('d');
    expect(all.seq).toBe(6);
    expect(textOf(all.updates)).toBe(textOf(ups));
  });
});

describe('RedisDocStore keys', () => {
  it('keeps both keys of a document under its hash tag, and adopts a document stored under the untagged keys of earlier versions', async () => {
    const p = `${prefix}:${randomUUID()}`;
    const store = new RedisDocStore(redis, p, 2_000);
    const ups = edits(4);
    await store.append('docs:new', ups[0]!);
    expect(await redis.exists(`${p}:doc:log:{docs:new}`)).toBe(1);

    // Written the old way: two updates in the log, compacted once (base 1, snapshot of the first).
    await redis.rpush(`${p}:doc:log:docs:old`, Buffer.from(ups[1]!), Buffer.from(ups[2]!));
    await redis.hset(`${p}:doc:meta:docs:old`, 'base', 1, 'snapshot', Buffer.from(ups[0]!));
    const loaded = await store.load('docs:old');
    expect(loaded.seq).toBe(3);
    expect(textOf(loaded.updates)).toBe(textOf(ups.slice(0, 3)));
    expect(await redis.exists(`${p}:doc:log:docs:old`, `${p}:doc:meta:docs:old`)).toBe(0);
    expect(await redis.exists(`${p}:doc:log:{docs:old}`, `${p}:doc:meta:{docs:old}`)).toBe(2);
    expect(await store.append('docs:old', ups[3]!)).toBe(4);
    // A fresh store (another process) finds it under the tagged keys; stale untagged keys never override them.
    await redis.rpush(`${p}:doc:log:docs:old`, Buffer.from(ups[0]!));
    const again = await new RedisDocStore(redis, p, 2_000).load('docs:old');
    expect(again.seq).toBe(4);
    expect(textOf(again.updates)).toBe(textOf(ups));
  });
});

describe('SqliteDocStore sequence numbers', () => {
  it('counts on from the stored head, across a reopen, and after a failed commit reads the head from the file again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-docstore-'));
    dirs.push(dir);
    const db = openDatabase(dir);
    const store = new SqliteDocStore(db);
    const ups = edits(8);
    expect(await Promise.all(ups.slice(0, 3).map((u) => store.append('d', u)))).toEqual([1, 2, 3]);
    await store.compact('d', (u) => Y.mergeUpdates(u));
    expect(await store.append('d', ups[3]!)).toBe(4);
    // A row the store did not write takes the next number: that commit fails (and rejects)…
    db.prepare('INSERT INTO collab_updates (name, seq, data) VALUES (?, ?, ?)').run('d', 5, Buffer.from(ups[4]!));
    await expect(store.append('d', ups[5]!)).rejects.toThrow();
    // …and the next one reads the head again, so numbering goes on past it.
    expect(await store.append('d', ups[5]!)).toBe(6);
    // Another store on the same file (a restart) goes on from what is stored.
    const again = new SqliteDocStore(db);
    expect(await again.append('d', ups[6]!)).toBe(7);
    const all = await again.load('d');
    expect(all.seq).toBe(7);
    expect(textOf(all.updates)).toBe(textOf(ups.slice(0, 7)));
  });
});
