import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { MemoryDocStore, type DocStore, type StoredDocument } from '../src/collab/doc-store.js';
import { signToken } from '../src/index.js';
import { HubError } from '../src/protocol/errors.js';
import { converged, DOC_NAMESPACES, rawEdit, whenSynced, yWebsocket, sdkDocument } from './support/collab.js';
import { FaultyDocStore } from './support/faulty-doc-store.js';
import { closeAllServers, createTestServer, TEST_API_KEY, TEST_SECRET, until } from './support/harness.js';
import { killProcesses, startHubProcess } from './support/processes.js';

afterEach(async () => {
  await killProcesses();
  await closeAllServers();
});

const auth = { authorization: `apikey ${TEST_API_KEY}` };

function textUpdate(text: string): Uint8Array {
  const d = new Y.Doc();
  d.getText('text').insert(0, text);
  return Y.encodeStateAsUpdate(d);
}

async function storedText(store: MemoryDocStore, name: string): Promise<string> {
  const d = new Y.Doc();
  for (const u of (await store.load(name)).updates) Y.applyUpdate(d, u);
  return d.getText('text').toString();
}

/**
 * A store written against the interface before `asyncMerge`: it uses what `merge` returns as
 * the snapshot itself, so the host must hand it a synchronous merge.
 */
class SyncMergeStore implements DocStore {
  readonly inner = new MemoryDocStore();
  readonly merged: unknown[] = [];
  load(name: string): Promise<StoredDocument> {
    return this.inner.load(name);
  }
  append(name: string, update: Uint8Array): Promise<number> {
    return this.inner.append(name, update);
  }
  since(name: string, seq: number): Promise<StoredDocument> {
    return this.inner.since(name, seq);
  }
  head(name: string): Promise<number> {
    return this.inner.head(name);
  }
  compact(name: string, merge: (updates: Uint8Array[]) => Uint8Array | Promise<Uint8Array>): Promise<Uint8Array | undefined> {
    return this.inner.compact(name, (updates) => {
      const snapshot = merge(updates);
      this.merged.push(snapshot);
      return snapshot;
    });
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('collab: persistence and limits', () => {
  it('a custom store without asyncMerge is handed a synchronous merge, and its compacted snapshot holds the edits', async () => {
    const store = new SyncMergeStore();
    const server = await createTestServer({ namespaces: DOC_NAMESPACES, documentStore: store, collab: { compactDelayMs: 50 } });
    const p = yWebsocket(server.httpUrl, 'docs:sync-merge', await server.token('a'));
    try {
      await whenSynced(p);
      p.doc.getText('text').insert(0, 'one ');
      p.doc.getText('text').insert(4, 'two');
      await until(() => store.merged.length > 0, 'a compaction');
      expect(store.merged[0]).toBeInstanceOf(Uint8Array);
      const stored = await store.inner.load('docs:sync-merge');
      expect(stored.updates).toHaveLength(1);
      expect(await storedText(store.inner, 'docs:sync-merge')).toBe('one two');
    } finally {
      p.destroy();
    }
  });

  it('a failed or timed-out load never creates an empty document; the client retries and gets the stored one', async () => {
    const inner = new MemoryDocStore();
    await inner.append('docs:kept', textUpdate('stored before'));
    const store = new FaultyDocStore(inner);
    store.faults.throw('load', new HubError(114, 'store down'), { times: 2 });
    const server = await createTestServer({ namespaces: DOC_NAMESPACES, documentStore: store, collab: { loadTimeoutMs: 200, compactDelayMs: 50 } });
    const p = yWebsocket(server.httpUrl, 'docs:kept', await server.token('a'));
    try {
      // Refused twice (closed with 1013), then loaded: the stored text, never an empty document.
      await whenSynced(p);
      expect(store.faults.calls('load')).toBeGreaterThanOrEqual(3);
      expect(p.doc.getText('text').toString()).toBe('stored before');
      p.doc.getText('text').insert(0, '+ ');
      await until(async () => (await storedText(inner, 'docs:kept')) === '+ stored before', 'the edit stored');
      // A load that hangs past collab.loadTimeoutMs: 123 over HTTP, nothing created or stored.
      store.faults.hang('load', { times: 1 });
      const res = await fetch(`${server.httpUrl}/api/documents/docs:other?text=text`, { headers: auth });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: number } }).error.code).toBe(123);
      expect(server.hub.openDocuments).toBe(1);
      expect((await inner.load('docs:other')).seq).toBe(0);
    } finally {
      store.faults.reset();
      p.destroy();
    }
  });

  it('an update the store refuses is never applied; the writer is closed, resyncs and the update is stored then', async () => {
    const store = new FaultyDocStore();
    const server = await createTestServer({ namespaces: DOC_NAMESPACES, documentStore: store });
    const writer = sdkDocument('docs:w', new Y.Doc(), { url: server.httpUrl, token: await server.token('w'), backoff: { minMs: 50, maxMs: 100 } });
    const watcher = yWebsocket(server.httpUrl, 'docs:w', await server.token('v'));
    try {
      await writer.whenSynced();
      await whenSynced(watcher);
      store.faults.throw('append', new HubError(114, 'store down'), { times: 1 });
      writer.doc.getText('text').insert(0, 'survives a store failure');
      // The watcher gets it only after the writer reconnected and its sync step 2 was stored.
      await converged([writer.doc, watcher.doc]);
      expect(watcher.doc.getText('text').toString()).toBe('survives a store failure');
      expect(store.faults.calls('append')).toBeGreaterThanOrEqual(2);
      expect(await storedText(store.inner as MemoryDocStore, 'docs:w')).toBe('survives a store failure');
    } finally {
      writer.destroy();
      watcher.destroy();
    }
  });

  it('SQLite: an update another editor has seen survives a SIGKILL of the node', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sb-collab-'));
    try {
      const options = { dataDir, apiKey: TEST_API_KEY, auth: { secret: TEST_SECRET }, namespaces: DOC_NAMESPACES };
      const node = await startHubProcess(options);
      const token = await signToken({ secret: TEST_SECRET, user: 'u' });
      const a = sdkDocument('docs:durable', new Y.Doc(), { url: node.httpUrl, token });
      const b = sdkDocument('docs:durable', new Y.Doc(), { url: node.httpUrl, token });
      await Promise.all([a.whenSynced(), b.whenSynced()]);
      for (let i = 0; i < 20; i++) a.doc.getText('text').insert(i, String(i % 10));
      const seen = await converged([a.doc, b.doc]);
      a.destroy();
      b.destroy();
      await node.kill();
      const again = await startHubProcess(options, node.port);
      const res = await fetch(`${again.httpUrl}/api/documents/docs:durable?text=text`, { headers: auth });
      expect(((await res.json()) as { text: { text: string } }).text.text).toBe(seen);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 30_000);

  it('limits: largest update (121), documents open per node (122)', async () => {
    const server = await createTestServer({
      namespaces: DOC_NAMESPACES,
      collab: { maxUpdateBytes: 2_000, maxDocumentBytes: 4_000, maxOpenDocuments: 2 },
    });
    const post = (name: string, body: Uint8Array): Promise<Response> =>
      fetch(`${server.httpUrl}/api/documents/${name}/update`, { method: 'POST', headers: auth, body: Buffer.from(body) });
    expect((await post('docs:a', textUpdate('x'.repeat(3_000)))).status).toBe(413);
    expect((await post('docs:a', textUpdate('x'.repeat(1_500)))).status).toBe(200);
    expect((await post('docs:a', textUpdate('y'.repeat(1_500)))).status).toBe(200);
    const full = await post('docs:a', textUpdate('z'.repeat(1_500)));
    expect(full.status).toBe(413);
    expect(((await full.json()) as { error: { code: number } }).error.code).toBe(121);
    expect((await post('docs:b', textUpdate('b'))).status).toBe(200);
    const third = await post('docs:c', textUpdate('c'));
    expect(third.status).toBe(503);
    expect(((await third.json()) as { error: { code: number } }).error.code).toBe(122);
  });

  it('under steady writes the log is compacted once it holds half the snapshot, not every compactAfterUpdates updates', async () => {
    // Records how many parts (snapshot + logged updates) each compaction merged.
    const merged: number[] = [];
    class CountingStore extends MemoryDocStore {
      override compact(name: string, merge: (updates: Uint8Array[]) => Uint8Array | Promise<Uint8Array>): Promise<Uint8Array | undefined> {
        return super.compact(name, (parts) => {
          merged.push(parts.length);
          return merge(parts);
        });
      }
    }
    const store = new CountingStore();
    const server = await createTestServer({
      namespaces: DOC_NAMESPACES,
      documentStore: store,
      collab: { compactAfterUpdates: 5, compactDelayMs: 600_000 },
    });
    const write = (text: string): Promise<number> => server.hub.applyDocumentUpdate('docs:log', textUpdate(text));
    // Five updates, one of 2,000 characters: the first compaction (nothing compacted before).
    await write('a'.repeat(2_000));
    for (let i = 0; i < 4; i++) await write('b');
    await until(() => merged.length === 1, 'the first compaction');
    expect(merged).toEqual([5]);
    // Five small updates: compactAfterUpdates reached, but the log is far below half the snapshot.
    for (let i = 0; i < 5; i++) await write('c');
    // One of 1,500 characters takes the log past half the snapshot: the snapshot and all six are merged.
    await write('d'.repeat(1_500));
    await until(() => merged.length === 2, 'the second compaction');
    expect(merged).toEqual([5, 7]);
    expect(await storedText(store, 'docs:log')).toBe(((await server.hub.document('docs:log')) as Y.Doc).getText('text').toString());
  });

  it('memory stays bounded while 1,000 documents are opened and left in turn', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const server = await createTestServer({
      namespaces: DOC_NAMESPACES,
      collab: { idleUnloadMs: 20, compactDelayMs: 10 },
      limits: { connectionRatePerIp: { perSecond: 100_000, burst: 100_000 } },
    });
    const url = (i: number, token: string): string => `${server.httpUrl.replace('http', 'ws')}/collab/docs:m${i}?token=${token}`;
    const token = await server.token('m');
    const payload = textUpdate('some text in every document '.repeat(20));
    const heap = (): number => {
      gc();
      return process.memoryUsage().heapUsed;
    };
    let maxOpen = 0;
    for (let i = 0; i < 100; i++) await rawEdit(url(i, token), payload);
    await until(() => server.hub.openDocuments === 0, 'the warm-up documents unloaded');
    const before = heap();
    for (let i = 100; i < 1_100; i++) {
      await rawEdit(url(i, token), payload);
      maxOpen = Math.max(maxOpen, server.hub.openDocuments);
    }
    await until(() => server.hub.openDocuments === 0, 'every document unloaded');
    const grown = heap() - before;
    // Idle documents leave memory: only the stored bytes (in the memory store) stay, under 1 KB each; an open
    // Y.Doc with its awareness is about ten times that.
    expect(maxOpen).toBeLessThan(200);
    expect(grown).toBeLessThan(6 * 1024 * 1024);
  }, 60_000);
});
