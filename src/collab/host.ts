import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import * as Y from 'yjs';
import type { Broker } from '../broker/broker.js';
import { withTimeout } from '../limits/timeout.js';
import { HubError } from '../protocol/errors.js';
import type { Publication } from '../stream/types.js';
import type { DocStore } from './doc-store.js';
import { HostedDocument, REMOTE, type DocPeer } from './document.js';
import { compactUpdates, UpdateMerger } from './update-merger.js';
import type * as awarenessProtocol from 'y-protocols/awareness';
import { applyAwarenessUpdate } from 'y-protocols/awareness';

/** Library hooks of documents (`createHub({documentHooks})`). */
export interface DocumentHooks {
  /** A document is opened and the store holds nothing for it: return its initial state (a Yjs update), or nothing. */
  onLoad?(name: string): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  /** An update was stored and applied on this node (`user` is '' for an HTTP write). */
  onChange?(name: string, update: Uint8Array, origin: { user: string; client: string }): void;
  /** The document's log was compacted into `snapshot` (debounced): copy it elsewhere if you like. */
  onStore?(name: string, snapshot: Uint8Array): void | Promise<void>;
}

/** What the host reports to the hub's metrics (src/metrics/metrics.ts). */
export interface DocumentMetricsSink {
  documentUpdated(bytes: number): void;
  documentLoadFailed(): void;
}

export interface CollabLimits {
  maxUpdateBytes: number;
  maxDocumentBytes: number;
  maxOpenDocuments: number;
  idleUnloadMs: number;
  compactAfterUpdates: number;
  compactDelayMs: number;
  resyncIntervalMs: number;
  loadTimeoutMs: number;
}

/** Broker channel of a document's updates between nodes; `|` never occurs in a client channel name. */
const brokerChannel = (name: string): string => `collab|${name}`;
const GAP_WAIT_MS = 200;

/**
 * Every document open on this node: loads on first open (never an empty document on a failed
 * load), keeps the peers, unloads after the last one left and `idleUnloadMs` passed, compacts
 * the stored log (debounced), and keeps nodes converged: updates travel over the broker with
 * their sequence number, and a gap (seen, or found by the periodic head check) is repaired
 * from the store.
 */
export class DocumentHost {
  private readonly docs = new Map<string, HostedDocument>();
  private readonly opening = new Map<string, Promise<HostedDocument>>();
  private readonly nodeId = randomUUID();
  private readonly resyncTimer: NodeJS.Timeout | undefined;
  private readonly compactTimer: NodeJS.Timeout;
  /** The compaction queue (one at a time, compactNow). */
  private compactions: Promise<void> = Promise.resolve();
  private readonly merger = new UpdateMerger();
  private closed = false;

  constructor(
    private readonly store: DocStore,
    private readonly broker: Broker,
    private readonly limits: CollabLimits,
    private readonly hooks: DocumentHooks,
    private readonly logger: Logger,
    /** Whether other nodes may write the same documents (Redis): updates go over the broker and the periodic head check runs. */
    private readonly shared: boolean,
    private readonly metrics?: DocumentMetricsSink,
  ) {
    // One timer for every document's debounced compaction (instead of a timer reset per update).
    this.compactTimer = setInterval(() => this.compactDue(), Math.max(10, Math.floor(limits.compactDelayMs / 4)));
    this.compactTimer.unref();
    if (shared) {
      this.resyncTimer = setInterval(() => void this.checkHeads(), limits.resyncIntervalMs);
      this.resyncTimer.unref();
    }
  }

  get openCount(): number {
    return this.docs.size;
  }

  /** Whether the broker channel is one of ours. */
  static owns(channel: string): boolean {
    return channel.startsWith('collab|');
  }

  /** Opens (loading if needed) and adds a peer; rejects with 122 past maxOpenDocuments, 123 when loading failed. */
  async join(name: string, peer: DocPeer): Promise<HostedDocument> {
    const doc = await this.live(name);
    clearTimeout(doc.idleTimer);
    doc.greet(peer);
    return doc;
  }

  /**
   * The open document, never one an unload has just destroyed (an unload can finish between
   * `open` resolving and its caller going on): the caller may use it synchronously.
   */
  private async live(name: string): Promise<HostedDocument> {
    let doc = await this.open(name);
    while (doc.destroyed || this.docs.get(name) !== doc) doc = await this.open(name);
    return doc;
  }

  /**
   * Runs `fn` with the open document (loading it), held: no idle unload while `fn` runs (an
   * HTTP read or write, `hub.applyDocumentUpdate`), so a write in flight is applied to the same
   * copy later joiners get, never to one unloaded meanwhile. The idle time starts over after.
   */
  async use<T>(name: string, fn: (doc: HostedDocument) => T | Promise<T>): Promise<T> {
    const doc = await this.live(name);
    doc.holds += 1;
    clearTimeout(doc.idleTimer);
    try {
      return await fn(doc);
    } finally {
      doc.holds -= 1;
      this.maybeIdle(doc);
    }
  }

  leave(doc: HostedDocument, peer: DocPeer): void {
    doc.leave(peer);
    this.maybeIdle(doc);
  }

  /** The open document, loading it (and scheduling its unload when nobody joins). */
  async open(name: string): Promise<HostedDocument> {
    if (this.closed) throw new HubError(114, 'server shutting down');
    const open = this.docs.get(name);
    if (open) return open;
    let loading = this.opening.get(name);
    if (!loading) {
      if (this.docs.size + this.opening.size >= this.limits.maxOpenDocuments) {
        throw new HubError(122, `too many documents open on this node (collab.maxOpenDocuments ${this.limits.maxOpenDocuments})`);
      }
      loading = this.load(name);
      this.opening.set(name, loading);
      loading.then(
        () => this.opening.delete(name),
        () => this.opening.delete(name),
      );
    }
    const doc = await loading;
    return doc;
  }

  private async load(name: string): Promise<HostedDocument> {
    const doc = new HostedDocument(name, {
      store: this.store,
      maxUpdateBytes: this.limits.maxUpdateBytes,
      maxDocumentBytes: this.limits.maxDocumentBytes,
      nodeId: this.nodeId,
      publish: (n, data) => this.publish(n, data),
      changed: (d, update, origin) => this.changed(d, update, origin),
      failed: (d, err) => {
        this.logger.warn({ err, document: d.name }, 'storing a document update failed');
        for (const peer of d.peers.keys()) peer.close(1011, '123 document store unavailable');
      },
    });
    try {
      // Subscribe first: an update published while we read is then either read or delivered.
      await this.broker.subscribe(brokerChannel(name));
      const stored = await withTimeout(this.store.load(name), this.limits.loadTimeoutMs, 'document load timed out');
      if (stored.seq === 0 && stored.updates.length === 0 && this.hooks.onLoad) {
        const initial = await withTimeout(Promise.resolve(this.hooks.onLoad(name)), this.limits.loadTimeoutMs, 'onLoad timed out');
        if (initial && initial.byteLength > 0) {
          this.docs.set(name, doc);
          await doc.write(initial, undefined);
          return doc;
        }
      }
      doc.applyStored(stored.updates, stored.seq);
      doc.bytes = stored.bytes;
      // What is stored counts as compacted: the next compaction waits for a log of half that.
      doc.compactedBytes = stored.bytes;
      if (this.closed) throw new HubError(114, 'server shutting down');
      this.docs.set(name, doc);
      // An update stored by another node while we read was delivered before the document was
      // in the map (and dropped): read once more past what we loaded.
      if (this.shared) void this.resync(doc);
      return doc;
    } catch (err) {
      // Never keep (or later store) a document that did not load: it would look empty.
      this.docs.delete(name);
      doc.destroy();
      this.broker.unsubscribe(brokerChannel(name)).catch(() => undefined);
      this.logger.warn({ err, document: name }, 'loading a document failed');
      this.metrics?.documentLoadFailed();
      throw err instanceof HubError && err.code !== 114 && err.code !== 115 && err.code !== 100
        ? err
        : new HubError(123, `document could not be loaded: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** A message from another node (or our own, echoed by the broker). */
  onPublication(channel: string, pub: Publication): void {
    const doc = this.docs.get(channel.slice('collab|'.length));
    if (!doc || doc.destroyed) return;
    let msg: { s?: number; u?: string; a?: string; n?: string };
    try {
      msg = JSON.parse(pub.data) as typeof msg;
    } catch {
      return;
    }
    if (msg.n === this.nodeId) return;
    try {
      if (typeof msg.a === 'string') {
        applyAwarenessUpdate(doc.awareness as awarenessProtocol.Awareness, Buffer.from(msg.a, 'base64'), REMOTE);
      } else if (typeof msg.u === 'string' && typeof msg.s === 'number') {
        const update = new Uint8Array(Buffer.from(msg.u, 'base64'));
        Y.applyUpdate(doc.doc, update, REMOTE);
        doc.bytes += update.byteLength;
        if (doc.noteSeq(msg.s)) this.gapSeen(doc);
      }
    } catch (err) {
      this.logger.warn({ err, document: doc.name }, 'bad document message from the broker');
    }
  }

  /** A hole above the watermark: wait briefly for a late delivery, then read the log. */
  private gapSeen(doc: HostedDocument): void {
    if (doc.gapTimer) return;
    doc.gapTimer = setTimeout(() => {
      doc.gapTimer = undefined;
      if (doc.pending.size > 0) void this.resync(doc);
    }, GAP_WAIT_MS);
    doc.gapTimer.unref();
  }

  /** Reads what the store holds past the watermark and applies it (state-vector convergence). */
  async resync(doc: HostedDocument): Promise<void> {
    try {
      const stored = await this.store.since(doc.name, doc.watermark);
      if (doc.destroyed) return;
      doc.applyStored(stored.updates, stored.seq);
    } catch (err) {
      this.logger.warn({ err, document: doc.name }, 'document resync failed; retried at the next check');
    }
  }

  /** Periodic: finds updates no delivery announced (lost on Redis pub/sub) by the stored head. */
  private async checkHeads(): Promise<void> {
    for (const doc of [...this.docs.values()]) {
      try {
        const head = await this.store.head(doc.name);
        if (head > doc.watermark && !doc.destroyed) {
          this.logger.info({ document: doc.name, head, watermark: doc.watermark }, 'document behind the store: resync');
          await this.resync(doc);
        }
      } catch {
        // Retried at the next check.
      }
    }
  }

  private publish(name: string, data: () => string): void {
    // Alone (the embedded broker), no other node listens: nothing to send.
    if (!this.shared) return;
    this.broker.publish(brokerChannel(name), data(), { history: { size: 0, ttlMs: 1000, metaTtlMs: 1000 } }).catch((err: unknown) => {
      // The update is stored: the other nodes find it by the head check.
      this.logger.debug({ err, document: name }, 'document broadcast failed');
    });
  }

  private changed(doc: HostedDocument, update: Uint8Array, origin: DocPeer | undefined): void {
    this.metrics?.documentUpdated(update.byteLength);
    try {
      this.hooks.onChange?.(doc.name, update, { user: origin?.user ?? '', client: origin?.client ?? '' });
    } catch (err) {
      this.logger.warn({ err, document: doc.name }, 'onChange hook failed');
    }
    doc.updatesSinceCompact += 1;
    doc.lastUpdateAt = Date.now();
    if (this.compactionDue(doc)) void this.compact(doc);
  }

  /**
   * Whether the log is worth merging now, while updates still come: `compactAfterUpdates`
   * updates since the last compaction, and a log of at least half the snapshot's bytes (or a
   * document past half of `maxDocumentBytes`). A compaction merges the whole snapshot, so
   * merging only once the log has grown in proportion keeps its cost per update bounded
   * (amortized) instead of growing with the document's history. The debounce
   * (`compactDelayMs` after the last update) and the unload still compact any log.
   */
  private compactionDue(doc: HostedDocument): boolean {
    if (doc.updatesSinceCompact < this.limits.compactAfterUpdates) return false;
    const logBytes = doc.bytes - doc.compactedBytes;
    return logBytes * 2 >= doc.compactedBytes || doc.bytes * 2 >= this.limits.maxDocumentBytes;
  }

  /** Compacts the documents whose last update is `compactDelayMs` old (the debounce). */
  private compactDue(): void {
    const due = Date.now() - this.limits.compactDelayMs;
    for (const doc of this.docs.values()) {
      if (doc.updatesSinceCompact > 0 && !doc.compacting && doc.lastUpdateAt <= due) void this.compact(doc);
    }
  }

  /** Merges the stored log into a snapshot (from the store's content, never from memory). */
  async compact(doc: HostedDocument): Promise<void> {
    if (doc.compacting) return doc.compacting;
    doc.compacting = this.compactNow(doc).finally(() => {
      doc.compacting = undefined;
    });
    return doc.compacting;
  }

  /**
   * One compaction at a time on this node, each in an event-loop turn of its own: documents
   * edited at the same pace reach their threshold together, and merging them back to back
   * would stall every socket meanwhile. The merge itself runs in a worker thread when the store
   * awaits it (`asyncMerge`), so only the store's read and write stay on the loop.
   */
  private async compactNow(doc: HostedDocument): Promise<void> {
    doc.updatesSinceCompact = 0;
    const turn = this.compactions.then(() => new Promise<void>((r) => setImmediate(r)));
    const done = turn.then(() => this.compactOne(doc));
    this.compactions = done;
    return done;
  }

  private async compactOne(doc: HostedDocument): Promise<void> {
    try {
      await doc.settled();
      const merge = this.store.asyncMerge ? (updates: Uint8Array[]) => this.merger.merge(updates) : compactUpdates;
      const before = doc.bytes;
      const snapshot = await this.store.compact(doc.name, merge);
      if (snapshot) {
        // What was appended while the merge ran is still logged.
        doc.bytes = snapshot.byteLength + Math.max(0, doc.bytes - before);
        doc.compactedBytes = snapshot.byteLength;
        await this.hooks.onStore?.(doc.name, snapshot);
      }
    } catch (err) {
      this.logger.warn({ err, document: doc.name }, 'compacting a document failed; retried later');
    }
  }

  private maybeIdle(doc: HostedDocument): void {
    if (doc.peers.size > 0 || doc.holds > 0 || doc.destroyed) return;
    clearTimeout(doc.idleTimer);
    doc.idleTimer = setTimeout(() => void this.unload(doc), this.limits.idleUnloadMs);
    doc.idleTimer.unref();
  }

  /** Library access: opens (loading it) and returns the document's Y.Doc (kept until the idle time passes). */
  read(name: string): Promise<HostedDocument['doc']> {
    return this.use(name, (doc) => doc.doc);
  }

  /** Stores and applies an update as the server (no permission checks); resolves with its sequence number. */
  applyUpdate(name: string, update: Uint8Array): Promise<number> {
    return this.use(name, (doc) => doc.write(update, undefined));
  }

  private async unload(doc: HostedDocument): Promise<void> {
    if (doc.peers.size > 0 || doc.holds > 0 || doc.destroyed) return;
    try {
      if (doc.updatesSinceCompact > 0) await this.compact(doc);
    } finally {
      // Someone joined (or an HTTP request took it) while we compacted: keep it.
      if (doc.peers.size === 0 && doc.holds === 0 && !doc.destroyed && this.docs.get(doc.name) === doc) {
        this.docs.delete(doc.name);
        doc.destroy();
        this.broker.unsubscribe(brokerChannel(doc.name)).catch(() => undefined);
      }
    }
  }

  /** Shutdown: waits for queued writes, compacts what changed, frees everything. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.resyncTimer);
    clearInterval(this.compactTimer);
    for (const doc of [...this.docs.values()]) {
      try {
        if (doc.updatesSinceCompact > 0) await this.compact(doc);
      } finally {
        doc.destroy();
      }
    }
    this.docs.clear();
    await this.merger.close();
  }
}
