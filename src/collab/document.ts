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

const PENDING = 0;
const STORED = 1;
const FAILED = 2;

/** A write waiting for its append, then for the writes before it (HostedDocument.drain). */
interface QueuedWrite {
  update: Uint8Array;
  origin: DocPeer | undefined;
  asReceived: boolean;
  seq: number;
  state: typeof PENDING | typeof STORED | typeof FAILED;
  err: unknown;
  resolve(seq: number): void;
  reject(err: unknown): void;
  /** settled() callers waiting for this write (the last queued when they asked). */
  settled: Array<() => void> | undefined;
}

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
  /** The writes whose append is under way or done but not yet applied, in order (drain). */
  private readonly queue: QueuedWrite[] = [];
  destroyed = false;

  /**
   * A peer's incremental update being applied (write with `asReceived`): the transaction that
   * applies it is forwarded with the bytes received, not Yjs' encoding of it (inboundApplied).
   */
  private inbound: { update: Uint8Array; origin: DocPeer | undefined; clean: boolean } | undefined;
  /** `forward` is off the 'update' event for the one transaction inboundApplied forwarded itself. */
  private forwardDetached = false;

  /**
   * Sends an update applied here to every peer but the one it came from, encoded once (one
   * Buffer for every socket): a sync step 2, a server write, another node's update, a change an
   * observer makes in response to a peer's update — every transaction but the one applying a
   * peer's incremental update, which inboundApplied forwards as received.
   */
  private readonly forward = (update: Uint8Array, origin: unknown): void => {
    this.send(update, origin);
  };

  private send(update: Uint8Array, origin: unknown): void {
    if (this.peers.size === 0 || (this.peers.size === 1 && this.peers.has(origin as DocPeer))) return;
    const message = encodeUpdate(update);
    for (const peer of this.peers.keys()) if (peer !== origin) peer.send(message);
  }

  /**
   * A transaction is cleaned up (Yjs encodes it for the 'update' listeners right after): the
   * one applying `inbound` is recognised by its origin, and its peers get the update as
   * received (as stored) — unless Yjs held back part of it or of an earlier one (missing
   * dependencies), when only Yjs' encoding of what it integrated is exact. For that one
   * transaction `forward` is taken off the 'update' event, so Yjs does not encode it for us
   * (~2 µs an update); it is back before the next transaction's turn (restoreForward), so a
   * change an observer makes in response is forwarded as usual.
   */
  private readonly inboundApplied = (tr: Y.Transaction): void => {
    const inbound = this.inbound;
    if (inbound === undefined || tr.origin !== inbound.origin) return;
    this.inbound = undefined;
    const { store } = this.doc;
    if (!inbound.clean || store.pendingStructs !== null || store.pendingDs !== null) return;
    // An update that brought nothing new is not forwarded (Yjs would not emit it either).
    if (!changedIn(tr)) return;
    this.send(inbound.update, inbound.origin);
    this.doc.off('update', this.forward);
    this.forwardDetached = true;
  };

  private readonly restoreForward = (): void => {
    if (!this.forwardDetached) return;
    this.forwardDetached = false;
    this.doc.on('update', this.forward);
  };

  constructor(
    readonly name: string,
    private readonly parts: DocumentParts,
  ) {
    this.awareness = new awarenessProtocol.Awareness(this.doc);
    this.awareness.setLocalState(null);
    this.doc.on('update', this.forward);
    this.doc.on('afterTransactionCleanup', this.inboundApplied);
    // The next transaction's cleanup begins, or the last one ended: `forward` is back.
    this.doc.on('beforeObserverCalls', this.restoreForward);
    this.doc.on('afterAllTransactions', this.restoreForward);
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
    return new Promise<number>((resolve, reject) => {
      const w: QueuedWrite = { update, origin, asReceived, seq: 0, state: PENDING, err: undefined, resolve, reject, settled: undefined };
      this.queue.push(w);
      let appended: Promise<number>;
      try {
        appended = this.parts.store.append(this.name, update);
      } catch (err) {
        appended = Promise.reject(err);
      }
      appended.then(
        (seq) => {
          w.seq = seq;
          w.state = STORED;
          this.drain();
        },
        (err: unknown) => {
          w.err = err;
          w.state = FAILED;
          this.drain();
        },
      );
    });
  }

  /**
   * Applies the writes at the head of the queue whose append has finished, in the order they
   * were queued (a later append that finished first waits for the ones before it).
   */
  private drain(): void {
    const queue = this.queue;
    while (queue.length > 0 && queue[0]!.state !== PENDING) {
      const w = queue.shift()!;
      try {
        if (w.state === FAILED) {
          this.bytes -= w.update.byteLength;
          this.parts.failed(this, w.err);
          w.reject(w.err);
        } else {
          // Stored: a document unloaded meanwhile loads it from the store next time.
          if (!this.destroyed) this.applyStoredWrite(w);
          w.resolve(w.seq);
        }
      } catch (err) {
        w.reject(err);
      } finally {
        for (const done of w.settled ?? []) done();
      }
    }
  }

  private applyStoredWrite(w: QueuedWrite): void {
    const { update, origin, seq } = w;
    this.noteSeq(seq);
    if (w.asReceived) this.applyAsReceived(update, origin);
    else Y.applyUpdate(this.doc, update, origin);
    this.parts.publish(this.name, () => JSON.stringify({ s: seq, u: Buffer.from(update).toString('base64'), n: this.parts.nodeId }));
    this.parts.changed(this, update, origin);
  }

  /** Applies a peer's update so that its transaction is forwarded as received (inboundApplied). */
  private applyAsReceived(update: Uint8Array, origin: DocPeer | undefined): void {
    const { store } = this.doc;
    this.inbound = { update, origin, clean: store.pendingStructs === null && store.pendingDs === null };
    try {
      Y.applyUpdate(this.doc, update, origin);
    } finally {
      this.inbound = undefined;
      this.restoreForward();
    }
  }

  /** Resolves when every write queued so far is done. */
  settled(): Promise<void> {
    const last = this.queue.at(-1);
    if (!last) return DONE;
    return new Promise<void>((resolve) => (last.settled ??= []).push(resolve));
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

/** Whether a transaction changed anything (what Yjs checks before emitting 'update'). */
function changedIn(tr: Y.Transaction): boolean {
  if (tr.deleteSet.clients.size > 0) return true;
  for (const [client, clock] of tr.afterState) if (tr.beforeState.get(client) !== clock) return true;
  return false;
}
