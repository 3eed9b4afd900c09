import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { fromBase64, toBase64 } from 'lib0/buffer';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import * as Y from 'yjs';
import type { Inbound } from './codec.js';
import { ClientError } from './errors.js';
import type { ReplyCallback } from './reply-table.js';

const MSG_SYNC = 0;
const MSG_AWARENESS = 1;

export interface DocumentOptions {
  /** An Awareness of your own (cursors, names); default: a new one on the doc. */
  awareness?: awarenessProtocol.Awareness;
}

/** What a provider needs of its client: `doc` commands, the codec's bytes, and reports. */
export interface DocumentLink {
  readonly connected: boolean;
  /** Whether the connection speaks MessagePack (bytes travel raw) or JSON (`{"$binary": base64}`). */
  readonly binary: boolean;
  send(method: 'doc' | 'leaveDoc', params: unknown, callback: ReplyCallback): void;
  reportError(err: ClientError): void;
  removeDocument(provider: DocumentProvider): void;
}

type Listener = (value: unknown) => void;
export type DocumentEvent = 'status' | 'synced' | 'denied';

/**
 * Syncs a Y.Doc with a Switchboard document (a channel of a `document: true` namespace) over the
 * client's regular connection: `doc` commands and pushes carrying y-protocols messages
 * (docs/protocol.md, Documents). Made by `client.document(name, ydoc)`.
 *
 * After every (re)connect it syncs again (sync step 1 with its state vector both ways), so an
 * edit made while offline, or one whose write failed, reaches the server. Others' awareness is
 * cleared when the connection goes. Local updates are sent one `doc` command at a time (those
 * made meanwhile merged into the next), each acknowledged once the server stored it.
 *
 * Events: `status` (`connecting` | `connected` | `disconnected`), `synced` (true once the
 * server's state is in), `denied` (the server refused an update: the reason with its code,
 * e.g. `120 document is read-only`).
 */
export class DocumentProvider {
  readonly awareness: awarenessProtocol.Awareness;
  synced = false;
  status: 'connecting' | 'connected' | 'disconnected' = 'disconnected';
  private readonly listeners = new Map<string, Set<Listener>>();
  private destroyed = false;
  /** Left for good by the server (a narrowed token): nothing is sent until the next (re)connect. */
  private left = false;
  /** Local updates not yet sent (one update command in flight at a time). */
  private pending: Uint8Array[] = [];
  private inflight = false;
  /** Bumped on each (re)sync: replies of an older round are ignored. */
  private round = 0;
  private readonly onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this || this.left) return;
    this.pending.push(update);
    this.flush();
  };
  private readonly onAwarenessUpdate = ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown): void => {
    if (origin === this) return;
    this.send(awarenessMessage(this.awareness, [...added, ...updated, ...removed]));
  };

  constructor(
    readonly name: string,
    readonly doc: Y.Doc,
    private readonly link: DocumentLink,
    options: DocumentOptions = {},
  ) {
    this.awareness = options.awareness ?? new awarenessProtocol.Awareness(doc);
    doc.on('update', this.onDocUpdate);
    this.awareness.on('update', this.onAwarenessUpdate);
    if (link.connected) this._connected();
    else this.setStatus('connecting');
  }

  on(event: DocumentEvent, fn: Listener): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Resolves once synced with the server (now, if already). */
  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.on('synced', () => {
        off();
        resolve();
      });
    });
  }

  /** Stops syncing: tells the others our cursor is gone, leaves the document, leaves the Y.Doc as it is. */
  destroy(): void {
    if (this.destroyed) return;
    awarenessProtocol.removeAwarenessStates(this.awareness, [this.doc.clientID], 'destroy');
    this.destroyed = true;
    this.doc.off('update', this.onDocUpdate);
    this.awareness.off('update', this.onAwarenessUpdate);
    if (this.link.connected) this.link.send('leaveDoc', { channel: this.name }, () => undefined);
    this.link.removeDocument(this);
    this.pending = [];
    this.setStatus('disconnected');
  }

  /** @internal The connection is up (first connect or reconnect): sync from scratch. */
  _connected(): void {
    if (this.destroyed) return;
    this.left = false;
    this.round += 1;
    this.inflight = false;
    // What was not acknowledged is re-sent by the sync (the server's step 1 asks for it).
    this.pending = [];
    this.setStatus('connected');
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, MSG_SYNC);
    syncProtocol.writeSyncStep1(e, this.doc);
    this.send(encoding.toUint8Array(e));
    // Our state again with a newer clock (sent by the update handler): the server counted one
    // past our last clock when it removed our state, and _lost counted that one already.
    const local = this.awareness.getLocalState();
    if (local !== null) this.awareness.setLocalState(local);
  }

  /** @internal The connection went: not synced, and others' cursors are stale until the next sync. */
  _lost(): void {
    if (this.destroyed || this.status === 'disconnected') return;
    this.synced = false;
    this.inflight = false;
    this.pending = [];
    const others = [...this.awareness.getStates().keys()].filter((id) => id !== this.doc.clientID);
    awarenessProtocol.removeAwarenessStates(this.awareness, others, this);
    // The server removes our state when the connection goes, one clock past ours: count that
    // one here (nothing is sent while off), so the state _connected sends is newer than the removal.
    const local = this.awareness.getLocalState();
    if (local !== null) this.awareness.setLocalState(local);
    this.setStatus('disconnected');
  }

  /** @internal A `doc` push for this document. */
  _push(msg: Inbound): void {
    if (this.destroyed) return;
    if (msg.left !== undefined) {
      const left = msg.left as { code?: number; message?: string; rejoin?: boolean };
      if (left.rejoin === false) this.revoked(left.code ?? 103, left.message ?? 'left the document');
      // The server dropped us from the document (its store failed): join again.
      else if (this.link.connected) this._connected();
      return;
    }
    const bytes = readBytes(msg.message);
    if (bytes) this.receive(bytes);
  }

  private receive(data: Uint8Array): void {
    const d = decoding.createDecoder(data);
    const type = decoding.readVarUint(d);
    if (type === MSG_SYNC) {
      const e = encoding.createEncoder();
      encoding.writeVarUint(e, MSG_SYNC);
      const kind = syncProtocol.readSyncMessage(d, e, this.doc, this);
      // The server's step 1 is answered with step 2: everything it lacks (offline edits too).
      if (encoding.length(e) > 1) this.send(encoding.toUint8Array(e));
      if (kind === syncProtocol.messageYjsSyncStep2 && !this.synced) {
        this.synced = true;
        this.emit('synced', true);
      }
    } else if (type === MSG_AWARENESS) {
      awarenessProtocol.applyAwarenessUpdate(this.awareness, decoding.readVarUint8Array(d), this);
    }
  }

  /** Sends the pending local updates as one, once the one before was acknowledged. */
  private flush(): void {
    if (this.inflight || this.pending.length === 0 || !this.link.connected || this.left) return;
    const update = this.pending.length === 1 ? this.pending[0]! : Y.mergeUpdates(this.pending);
    this.pending = [];
    this.inflight = true;
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, MSG_SYNC);
    syncProtocol.writeUpdate(e, update);
    const round = this.round;
    this.send(encoding.toUint8Array(e), () => {
      if (round !== this.round) return;
      this.inflight = false;
      this.flush();
    });
  }

  private send(message: Uint8Array, done?: () => void): void {
    if (!this.link.connected || this.left) return;
    const round = this.round;
    const payload = this.link.binary ? message : { $binary: toBase64(message) };
    this.link.send('doc', { channel: this.name, message: payload }, (err) => {
      if (err && round === this.round && !this.destroyed) this.refused(err);
      done?.();
    });
  }

  private refused(err: ClientError): void {
    if (!err.fromServer) return; // The connection went: the next connect syncs again.
    if (err.code === 120 || err.code === 121) {
      // `120 document is read-only`: the code, then the server's own words.
      this.emit('denied', `${err.code} ${err.message.replace(/^doc: /, '').replace(/ \(\d+\)$/, '')}`);
      return;
    }
    this.link.reportError(err);
    // A temporary failure (store down, rate): leave and join again, so the sync re-sends what the server lacks.
    if (err.temporary && this.link.connected && !this.destroyed) {
      this.link.send('leaveDoc', { channel: this.name }, () => undefined);
      this._connected();
    }
  }

  /**
   * The server ended our membership for good (a refreshed token no longer grants the document):
   * not synced, others' cursors gone, `denied` and the client's `error` told; the next
   * (re)connect tries to join again.
   */
  private revoked(code: number, message: string): void {
    this.left = true;
    this.synced = false;
    this.inflight = false;
    this.pending = [];
    this.round += 1;
    const others = [...this.awareness.getStates().keys()].filter((id) => id !== this.doc.clientID);
    awarenessProtocol.removeAwarenessStates(this.awareness, others, this);
    this.emit('denied', `${code} ${message}`);
    this.link.reportError(new ClientError(code, `doc: ${message} (${code})`, { fromServer: true, temporary: false }));
  }

  private emit(event: string, value: unknown): void {
    for (const fn of this.listeners.get(event) ?? []) fn(value);
  }

  private setStatus(status: DocumentProvider['status']): void {
    if (this.status === status) return;
    this.status = status;
    this.emit('status', status);
  }
}

function readBytes(value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'object' && value !== null && typeof (value as { $binary?: unknown }).$binary === 'string') {
    return fromBase64((value as { $binary: string }).$binary);
  }
  return undefined;
}

function awarenessMessage(awareness: awarenessProtocol.Awareness, ids: number[]): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MSG_AWARENESS);
  encoding.writeVarUint8Array(e, awarenessProtocol.encodeAwarenessUpdate(awareness, ids));
  return encoding.toUint8Array(e);
}
