/** A fault-injecting DocStore (see test/support/fault-switch.ts for the faults). */
import { MemoryDocStore, type DocStore, type StoredDocument } from '../../src/collab/doc-store.js';
import { Faults } from './fault-switch.js';

export const DOC_STORE_METHODS = ['load', 'append', 'since', 'head', 'compact', 'close'] as const;
export type DocStoreMethod = (typeof DOC_STORE_METHODS)[number];

export class FaultyDocStore implements DocStore {
  readonly faults = new Faults<DocStoreMethod>(DOC_STORE_METHODS, ['close']);

  constructor(readonly inner: DocStore = new MemoryDocStore()) {}

  load(name: string): Promise<StoredDocument> {
    return this.faults.run('load', [name], () => this.inner.load(name), () => ({ updates: [], seq: 0, bytes: 0 }));
  }

  append(name: string, update: Uint8Array): Promise<number> {
    return this.faults.run('append', [name, update], () => this.inner.append(name, update), () => 0);
  }

  since(name: string, seq: number): Promise<StoredDocument> {
    return this.faults.run('since', [name, seq], () => this.inner.since(name, seq), () => ({ updates: [], seq, bytes: 0 }));
  }

  head(name: string): Promise<number> {
    return this.faults.run('head', [name], () => this.inner.head(name), () => 0);
  }

  get asyncMerge(): boolean {
    return this.inner.asyncMerge === true;
  }

  compact(name: string, merge: (updates: Uint8Array[]) => Uint8Array | Promise<Uint8Array>): Promise<Uint8Array | undefined> {
    return this.faults.run('compact', [name], () => this.inner.compact(name, merge), () => undefined);
  }

  close(): Promise<void> {
    return this.faults.run('close', [], () => this.inner.close(), () => undefined);
  }
}
