import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as syncProtocol from 'y-protocols/sync';
import type * as Y from 'yjs';
import { Backoff, type BackoffOptions } from './backoff.js';
import { DEFAULTS } from './constants.js';
import type { WebSocketConstructor } from './types.js';
import { resolveWebSocket } from './websocket.js';

const MSG_SYNC = 0;
const MSG_AWARENESS = 1;
const MSG_AUTH = 2;

export interface DocumentProviderOptions {
  /**
   * The hub's base URL (`ws://host:7070`, `https://chat.example`, or its WebSocket URL; the path
   * is replaced), or several nodes' URLs: each reconnect tries the next.
   */
  url: string | readonly string[];
  /** A connection token (JWT), sent as `?token=`. */
  token?: string;
  /** Called for a token before each connect (after `token`, if both are given, from the second connect on). */
  getToken?: () => Promise<string>;
  /** The hub's `collab.path` (default `/collab`). */
  path?: string;
  /** Reconnect delays (exponential, full jitter); the SDK's defaults. */
  backoff?: Partial<BackoffOptions>;
  /** An Awareness of your own (cursors, names); default: a new one on the doc. */
  awareness?: awarenessProtocol.Awareness;
  WebSocket?: WebSocketConstructor;
}

type Listener = (value: unknown) => void;

interface BinarySocket {
  binaryType: string;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

/**
 * Syncs a Y.Doc with a Switchboard document (a channel of a `document: true` namespace) and
 * reconnects with the SDK's backoff. Pass the app's own Y.Doc: this module imports `yjs` only
 * for types, so one copy of Yjs is used.
 *
 * Events: `status` (`connecting` | `connected` | `disconnected`), `synced` (true once the
 * server's state is in), `denied` (the server refused an update: the reason with its code,
 * e.g. `120 document is read-only`).
 */
export class DocumentProvider {
  readonly awareness: awarenessProtocol.Awareness;
  synced = false;
  status: 'connecting' | 'connected' | 'disconnected' = 'disconnected';
  private ws: BinarySocket | undefined;
  private readonly backoff: Backoff;
  private readonly listeners = new Map<string, Set<Listener>>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private destroyed = false;
  private connects = 0;
  private readonly onDocUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this) return;
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, MSG_SYNC);
    syncProtocol.writeUpdate(e, update);
    this.send(encoding.toUint8Array(e));
  };
  private readonly onAwarenessUpdate = ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }, origin: unknown): void => {
    if (origin === this) return;
    const changed = [...added, ...updated, ...removed];
    this.send(awarenessMessage(this.awareness, changed));
  };

  constructor(
    readonly name: string,
    readonly doc: Y.Doc,
    private readonly options: DocumentProviderOptions,
  ) {
    this.awareness = options.awareness ?? new awarenessProtocol.Awareness(doc);
    this.backoff = new Backoff({ ...DEFAULTS.backoff, ...options.backoff });
    doc.on('update', this.onDocUpdate);
    this.awareness.on('update', this.onAwarenessUpdate);
    void this.connect();
  }

  on(event: 'status' | 'synced' | 'denied', fn: Listener): () => void {
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

  private emit(event: string, value: unknown): void {
    for (const fn of this.listeners.get(event) ?? []) fn(value);
  }

  private setStatus(status: DocumentProvider['status']): void {
    this.status = status;
    this.emit('status', status);
  }

  private async url(): Promise<string> {
    const urls = typeof this.options.url === 'string' ? [this.options.url] : this.options.url;
    const base = new URL(urls[(this.connects - 1) % urls.length]!, (globalThis as { location?: { href?: string } }).location?.href);
    base.protocol = base.protocol === 'https:' || base.protocol === 'wss:' ? 'wss:' : 'ws:';
    base.pathname = `${this.options.path ?? '/collab'}/${encodeURIComponent(this.name)}`;
    base.search = '';
    let token = this.options.token;
    if (this.options.getToken && (token === undefined || this.connects > 1)) token = await this.options.getToken();
    if (token !== undefined) base.searchParams.set('token', token);
    return base.toString();
  }

  private async connect(): Promise<void> {
    if (this.destroyed) return;
    this.connects += 1;
    this.setStatus('connecting');
    let ws: BinarySocket;
    try {
      const Ctor = (await resolveWebSocket(this.options.WebSocket)) as unknown as new (url: string) => BinarySocket;
      const url = await this.url();
      if (this.destroyed) return;
      ws = new Ctor(url);
    } catch {
      this.retry();
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      this.backoff.reset();
      this.setStatus('connected');
      const e = encoding.createEncoder();
      encoding.writeVarUint(e, MSG_SYNC);
      syncProtocol.writeSyncStep1(e, this.doc);
      this.send(encoding.toUint8Array(e));
      if (this.awareness.getLocalState() !== null) this.send(awarenessMessage(this.awareness, [this.doc.clientID]));
    };
    ws.onmessage = (ev) => this.receive(new Uint8Array(ev.data as ArrayBuffer));
    ws.onerror = () => undefined;
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.synced = false;
      // Others' cursors are stale once we are off; they come back with the next sync.
      const others = [...this.awareness.getStates().keys()].filter((id) => id !== this.doc.clientID);
      awarenessProtocol.removeAwarenessStates(this.awareness, others, this);
      this.setStatus('disconnected');
      this.retry();
    };
  }

  private retry(): void {
    if (this.destroyed) return;
    this.timer = setTimeout(() => void this.connect(), this.backoff.next());
  }

  private receive(data: Uint8Array): void {
    const d = decoding.createDecoder(data);
    const type = decoding.readVarUint(d);
    if (type === MSG_SYNC) {
      const e = encoding.createEncoder();
      encoding.writeVarUint(e, MSG_SYNC);
      const kind = syncProtocol.readSyncMessage(d, e, this.doc, this);
      if (encoding.length(e) > 1) this.send(encoding.toUint8Array(e));
      if (kind === syncProtocol.messageYjsSyncStep2 && !this.synced) {
        this.synced = true;
        this.emit('synced', true);
      }
    } else if (type === MSG_AWARENESS) {
      awarenessProtocol.applyAwarenessUpdate(this.awareness, decoding.readVarUint8Array(d), this);
    } else if (type === MSG_AUTH) {
      decoding.readVarUint(d);
      this.emit('denied', decoding.readVarString(d));
    }
  }

  private send(message: Uint8Array): void {
    if (this.ws && this.ws.readyState === 1) this.ws.send(message);
  }

  /** Stops syncing: tells the others our cursor is gone, closes the socket, leaves the Y.Doc as it is. */
  destroy(): void {
    if (this.destroyed) return;
    awarenessProtocol.removeAwarenessStates(this.awareness, [this.doc.clientID], 'destroy');
    this.destroyed = true;
    clearTimeout(this.timer);
    this.doc.off('update', this.onDocUpdate);
    this.awareness.off('update', this.onAwarenessUpdate);
    this.ws?.close(1000, 'destroyed');
    this.ws = undefined;
    this.setStatus('disconnected');
  }
}

function awarenessMessage(awareness: awarenessProtocol.Awareness, ids: number[]): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, MSG_AWARENESS);
  encoding.writeVarUint8Array(e, awarenessProtocol.encodeAwarenessUpdate(awareness, ids));
  return encoding.toUint8Array(e);
}
