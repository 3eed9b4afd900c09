import * as awarenessProtocol from 'y-protocols/awareness';
import * as Y from 'yjs';
import { HubError } from '../protocol/errors.js';
import type { DocStore } from './doc-store.js';
import {
  decodeClientMessage,
  encodeAwareness,
  encodeStep1,
  encodeStep2,
  encodeUpdate,
  isEmptyUpdate,
} from './messages.js';

/** One client of a document: a y-websocket socket or an SDK connection's `doc` frames. */
export interface DocPeer {
  readonly user: string;
  readonly client: string;
  /** Subscribe right without publish right: updates are refused, never applied. */
  readonly readOnly: boolean;
  send(message: Uint8Array): void;
  close(code: number, reason: string): void;
}

const DONE: Promise<void> = Promise.resolve();

/** Origin of updates and awareness from other nodes or the store (never re-published). */
export const REMOTE = Symbol('remote');
/** Origin of awareness removals when a peer leaves (published to other nodes). */
const LEFT = Symbol('left');

export interface DocumentParts {
  store: DocStore;
  maxUpdateBytes: number;
  maxDocumentBytes: number;
  /** Sends a message to the other nodes (JSON text). */
  publish(name: string, data: () => string): void;
  /** After an update was stored and applied (the change hook, compaction scheduling). */
  changed(doc: HostedDocument, update: Uint8Array, origin: DocPeer | undefined): void;
  /** A write failed in the store: the writer is closed so it reconnects and syncs again. */
  failed(doc: HostedDocument, err: unknown): void;
  nodeId: string;
}

/**
 * One open document on this node: the Y.Doc, its awareness, the peers connected here, and how
 * far the stored log has been applied (`watermark`: every sequence number up to it is in).
 * Writes go store first, then the Y.Doc, then the peers and other nodes, in order (appends are
 * started at once, so a store may commit several in one go).
 */
export class HostedDocument {
  readonly doc = new Y.Doc({ gc: true });
  readonly awareness: awarenessProtocol.Awareness;
  readonly peers = new Map<DocPeer, Set<number>>();
  watermark = 0;
  /** Sequence numbers seen above the watermark (out of order, or past a gap). */
  readonly pending = new Set<number>();
  /** Bytes stored (snapshot + log), for limits.maxDocumentBytes. */
  bytes = 0;
  /** Bytes of the snapshot the last compaction wrote (0 before the first one here). */
  compactedBytes = 0;
  updatesSinceCompact = 0;
  lastUpdateAt = 0;
  compacting: Promise<void> | undefined;
  idleTimer: NodeJS.Timeout | undefined;
  /** HTTP requests and library calls using the document right now (no idle unload meanwhile). */
  holds = 0;
  gapTimer: NodeJS.Timeout | undefined;
  /** The write queue: each write waits for the one before. */
  private chain: Promise<void> = Promise.resolve();
  destroyed = false;

  /**
   * A peer's incremental update being applied (write with `asReceived`): the transaction that
   * applies it is forwarded with the bytes received, not Yjs' encoding of it (see forward).
   */
  private inbound: { update: Uint8Array; origin: DocPeer | undefined; clean: boolean } | undefined;

  /**
   * Sends an update applied here to every peer but the one it came from, encoded once (one
   * Buffer for every socket). The transaction applying a peer's incremental update is
   * recognised by its origin: the peers get the update as received (as stored), unless Yjs held
   * back part of it or of an earlier one (missing dependencies), when only what it integrated is
   * exact. Any other transaction — a sync step 2, a server write, another node's update, a
   * change an observer makes in response to the peer's update — goes as Yjs encodes it.
   */
  private readonly forward = (update: Uint8Array, origin: unknown): void => {
    const inbound = this.inbound;
    let bytes = update;
    if (inbound !== undefined && origin === inbound.origin) {
      this.inbound = undefined;
      const { store } = this.doc;
      if (inbound.clean && store.pendingStructs === null && store.pendingDs === null) bytes = inbound.update;
    }
    if (this.peers.size === 0 || (this.peers.size === 1 && this.peers.has(origin as DocPeer))) return;
    const message = encodeUpdate(bytes);
    for (const peer of this.peers.keys()) if (peer !== origin) peer.send(message);
  };

  constructor(
    readonly name: string,
    private readonly parts: DocumentParts,
  ) {
    this.awareness = new awarenessProtocol.Awareness(this.doc);
    this.awareness.setLocalState(null);
    this.doc.on('update', this.forward);
    this.awareness.on(
      'update',
      ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) => {
        const changed = [...added, ...updated, ...removed];
        const ids = this.peers.get(origin as DocPeer);
        if (ids) {
          for (const id of added) ids.add(id);
          for (const id of removed) ids.delete(id);
        }
        const update = awarenessProtocol.encodeAwarenessUpdate(this.awareness, changed);
        const message = encodeAwareness(update);
        for (const peer of this.peers.keys()) peer.send(message);
        if (origin !== REMOTE) {
          this.parts.publish(this.name, () => JSON.stringify({ a: Buffer.from(update).toString('base64'), n: this.parts.nodeId }));
        }
      },
    );
  }

  /** Greets a new peer: our state vector (sync step 1) and everyone's awareness. */
  greet(peer: DocPeer): void {
    this.peers.set(peer, new Set());
    peer.send(encodeStep1(Y.encodeStateVector(this.doc)));
    const states = [...this.awareness.getStates().keys()];
    if (states.length > 0) peer.send(encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(this.awareness, states)));
  }

  /** A peer left: its awareness states go too (here and on the other nodes). */
  leave(peer: DocPeer): void {
    const ids = this.peers.get(peer);
    this.peers.delete(peer);
    if (ids && ids.size > 0 && !this.destroyed) awarenessProtocol.removeAwarenessStates(this.awareness, [...ids], LEFT);
  }

  /**
   * Handles one y-protocols message of a peer (the same for a y-websocket socket and an SDK
   * connection). A malformed message throws at once (107: the caller closes or answers). An
   * update resolves once it is stored (durable) and applied; a refused one rejects with a
   * HubError (120 read-only, 121 too large, 107 not a Yjs update, 123/114/115 store failure),
   * which the caller turns into its own refusal (y-websocket: a permission-denied message).
   */
  receive(peer: DocPeer, data: Uint8Array): Promise<unknown> {
    let msg;
    try {
      msg = decodeClientMessage(data);
    } catch (err) {
      throw new HubError(107, `malformed document message: ${err instanceof Error ? err.message : String(err)}`);
    }
    switch (msg.kind) {
      case 'step1':
        peer.send(encodeStep2(Y.encodeStateAsUpdate(this.doc, msg.stateVector)));
        return DONE;
      case 'step2':
      case 'update':
        if (isEmptyUpdate(msg.update)) return DONE;
        if (peer.readOnly) {
          // Sync step 2 of a read-only client that holds nothing new is not an edit: no refusal.
          if (msg.kind === 'update' || this.bringsNew(msg.update)) return Promise.reject(new HubError(120, 'document is read-only'));
          return DONE;
        }
        return this.write(msg.update, peer, msg.kind === 'update');
      case 'awareness':
        awarenessProtocol.applyAwarenessUpdate(this.awareness, msg.update, peer);
        return DONE;
      case 'queryAwareness':
        peer.send(encodeAwareness(awarenessProtocol.encodeAwarenessUpdate(this.awareness, [...this.awareness.getStates().keys()])));
        return DONE;
    }
  }

  /** Whether an update holds structs this document lacks. */
  private bringsNew(update: Uint8Array): boolean {
    const theirs = Y.decodeStateVector(Y.encodeStateVectorFromUpdate(update));
    const ours = Y.decodeStateVector(Y.encodeStateVector(this.doc));
    for (const [client, clock] of theirs) if (clock > (ours.get(client) ?? 0)) return true;
    return false;
  }

  /**
   * Stores an update, then applies and forwards it. Refused (HubError 121) past the size
   * limits; a store failure rejects (114/115) and, for a peer, closes it so it syncs again.
   * `asReceived` (a client's incremental update, sync message 2): the peers get the update's
   * own bytes, as stored, instead of Yjs' encoding of what the transaction changed (the same
   * content for an update that brings only new structs, the usual case; a repeated part is
   * harmless to a Yjs client; an update that brings nothing new is not forwarded). A sync step 2
   * or a server write is forwarded as Yjs encodes it, so a client's whole state sent on
   * reconnect never reaches the others twice.
   */
  write(update: Uint8Array, origin: DocPeer | undefined, asReceived = false): Promise<number> {
    const { maxUpdateBytes, maxDocumentBytes } = this.parts;
    if (update.byteLength > maxUpdateBytes) {
      return Promise.reject(new HubError(121, `update larger than collab.maxUpdateBytes (${maxUpdateBytes} bytes)`));
    }
    if (this.bytes + update.byteLength > maxDocumentBytes) {
      return Promise.reject(new HubError(121, `document would be larger than collab.maxDocumentBytes (${maxDocumentBytes} bytes)`));
    }
    try {
      Y.decodeUpdate(update);
    } catch {
      return Promise.reject(new HubError(107, 'update: not a Yjs update'));
    }
    if (this.destroyed) return Promise.reject(new HubError(123, 'document was unloaded'));
    // The append starts now (stores keep the order of appends, and SQLite commits every append
    // of one event-loop turn together); applying, forwarding and acknowledging stay in order,
    // each after its own durable append. The bytes are reserved now, so writes in flight count.
    this.bytes += update.byteLength;
    const appended = this.parts.store.append(this.name, update);
    appended.catch(() => undefined);
    const done = this.chain.then(async () => {
      let seq: number;
      try {
        seq = await appended;
      } catch (err) {
        this.bytes -= update.byteLength;
        this.parts.failed(this, err);
        throw err;
      }
      // Stored: a document unloaded meanwhile loads it from the store next time.
      if (this.destroyed) return seq;
      this.noteSeq(seq);
      if (asReceived) this.applyAsReceived(update, origin);
      else Y.applyUpdate(this.doc, update, origin);
      this.parts.publish(this.name, () => JSON.stringify({ s: seq, u: Buffer.from(update).toString('base64'), n: this.parts.nodeId }));
      this.parts.changed(this, update, origin);
      return seq;
    });
    this.chain = done.then(
      () => undefined,
      () => undefined,
    );
    return done;
  }

  /** Applies a peer's update so that its transaction is forwarded as received (forward). */
  private applyAsReceived(update: Uint8Array, origin: DocPeer | undefined): void {
    const { store } = this.doc;
    this.inbound = { update, origin, clean: store.pendingStructs === null && store.pendingDs === null };
    try {
      Y.applyUpdate(this.doc, update, origin);
    } finally {
      // An update that brought nothing new has no transaction to forward.
      this.inbound = undefined;
    }
  }

  /** Resolves when every write queued so far is done. */
  settled(): Promise<void> {
    return this.chain;
  }

  /** Records that update `seq` is applied; true while a gap remains above the watermark. */
  noteSeq(seq: number): boolean {
    if (seq > this.watermark) this.pending.add(seq);
    while (this.pending.delete(this.watermark + 1)) this.watermark += 1;
    return this.pending.size > 0;
  }

  /** Applies stored updates read from the store (load, resync). */
  applyStored(updates: readonly Uint8Array[], seq: number): void {
    if (updates.length > 0) Y.applyUpdate(this.doc, updates.length === 1 ? updates[0]! : Y.mergeUpdates([...updates]), REMOTE);
    if (seq > this.watermark) this.watermark = seq;
    for (const s of this.pending) if (s <= this.watermark) this.pending.delete(s);
  }

  destroy(): void {
    this.destroyed = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.gapTimer);
    this.awareness.destroy();
    this.doc.destroy();
    this.peers.clear();
  }
}
