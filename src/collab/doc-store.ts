/**
 * Where documents are kept: a compacted snapshot plus a log of the updates since, each with a
 * sequence number that grows by one per update of the document (on every node). An update is
 * appended (durably) before any client sees it applied, so an update a client has seen survives
 * a crash of the node that took it.
 */
export interface StoredDocument {
  /** The snapshot first (when there is one), then the logged updates in sequence order. */
  updates: Uint8Array[];
  /** Sequence number of the last update included; 0 for a document never written. */
  seq: number;
  /** Bytes of what is stored (snapshot + log), to enforce `collab.maxDocumentBytes`. */
  bytes: number;
}

export interface DocStore {
  /** The whole document; a document never written reads `{updates: [], seq: 0}`. Throws on a storage failure. */
  load(name: string): Promise<StoredDocument>;
  /** Appends one update durably; resolves with its sequence number. */
  append(name: string, update: Uint8Array): Promise<number>;
  /** Updates after `seq` (or the whole document when the log was compacted past it). */
  since(name: string, seq: number): Promise<StoredDocument>;
  /** Sequence number of the last update stored. */
  head(name: string): Promise<number>;
  /**
   * Merges the snapshot and the logged updates into one snapshot (read from storage, never from
   * a node's memory, so a document that failed to load can never overwrite what is stored).
   * `merge` is `compactUpdates` (update-merger.ts: the updates applied to a fresh Y.Doc, its state
   * encoded). Resolves with the new snapshot, or undefined when nothing was logged.
   * A store that sets `asyncMerge` awaits what `merge` returns: the host then merges off the
   * event loop (a worker thread), and the store must replace only the entries it read (appends
   * and reads go on meanwhile). Without it, `merge` returns the snapshot synchronously.
   */
  compact(name: string, merge: (updates: Uint8Array[]) => Uint8Array | Promise<Uint8Array>): Promise<Uint8Array | undefined>;
  /** `compact` awaits the result of `merge` (which may then be a Promise). */
  readonly asyncMerge?: boolean;
  close(): Promise<void>;
}

/** A DocStore in memory: documents live as long as the process (the embedded default without dataDir). */
export class MemoryDocStore implements DocStore {
  private readonly docs = new Map<string, { snapshot: Uint8Array | undefined; base: number; log: Uint8Array[] }>();

  private entry(name: string): { snapshot: Uint8Array | undefined; base: number; log: Uint8Array[] } {
    let e = this.docs.get(name);
    if (!e) {
      e = { snapshot: undefined, base: 0, log: [] };
      this.docs.set(name, e);
    }
    return e;
  }

  load(name: string): Promise<StoredDocument> {
    return this.since(name, -1);
  }

  append(name: string, update: Uint8Array): Promise<number> {
    const e = this.entry(name);
    e.log.push(update);
    return Promise.resolve(e.base + e.log.length);
  }

  since(name: string, seq: number): Promise<StoredDocument> {
    const e = this.docs.get(name);
    if (!e) return Promise.resolve({ updates: [], seq: 0, bytes: 0 });
    const top = e.base + e.log.length;
    const whole = seq < e.base;
    const updates = whole ? [...(e.snapshot ? [e.snapshot] : []), ...e.log] : e.log.slice(seq - e.base);
    return Promise.resolve({ updates, seq: top, bytes: sizeOf(updates) });
  }

  head(name: string): Promise<number> {
    const e = this.docs.get(name);
    return Promise.resolve(e ? e.base + e.log.length : 0);
  }

  readonly asyncMerge = true;

  /** Replaces the entries it read (appends made while `merge` runs stay in the log). */
  async compact(name: string, merge: (updates: Uint8Array[]) => Uint8Array | Promise<Uint8Array>): Promise<Uint8Array | undefined> {
    const e = this.docs.get(name);
    if (!e || e.log.length === 0) return undefined;
    const { base } = e;
    const count = e.log.length;
    const snapshot = await merge([...(e.snapshot ? [e.snapshot] : []), ...e.log]);
    // Compacted meanwhile (by another call): what was read is no longer the log's head.
    if (this.docs.get(name) !== e || e.base !== base) return undefined;
    e.base += count;
    e.log = e.log.slice(count);
    e.snapshot = snapshot;
    return snapshot;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export function sizeOf(updates: readonly Uint8Array[]): number {
  let n = 0;
  for (const u of updates) n += u.byteLength;
  return n;
}
