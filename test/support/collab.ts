/** Helpers of the test/collab-*.test.ts suites: y-websocket providers in Node, and waiting for convergence. */
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';
import { SwitchboardClient, type WebSocketConstructor } from '../../src/client/index.js';
import type { DocumentProvider } from '../../src/client/document.js';
import { until } from './harness.js';

export const DOC_NAMESPACES = { docs: { document: true }, ro: { document: true, clientPublish: 'none' as const } };

/** The unmodified npm y-websocket provider, connected to `<httpUrl>/collab/<name>?token=`. */
export function yWebsocket(httpUrl: string, name: string, token: string, doc = new Y.Doc()): WebsocketProvider {
  return new WebsocketProvider(`${httpUrl.replace(/^http/, 'ws')}/collab`, name, doc, {
    params: { token },
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  });
}

export async function whenSynced(p: WebsocketProvider): Promise<void> {
  await until(() => p.synced, 'y-websocket provider synced');
}

/** Waits until every doc's Y.Text `key` reads the same, and returns it. */
export function converged(docs: readonly Y.Doc[], key = 'text', timeoutMs = 15_000): Promise<string> {
  return until(
    () => {
      const texts = docs.map((d) => d.getText(key).toString());
      return texts.every((t) => t === texts[0]) ? texts[0]! : undefined;
    },
    'documents to converge',
    timeoutMs,
  );
}

/** A raw y-websocket-protocol client: sends `update` once the server greeted, resolves with the greeting. */
export async function rawEdit(wsUrl: string, update: Uint8Array): Promise<void> {
  const ws = new WebSocket(wsUrl);
  ws.binaryType = 'nodebuffer';
  await new Promise<void>((resolve, reject) => {
    ws.once('message', () => {
      // [sync, update, payload]: varuints 0, 2 then the length-prefixed update.
      const e = encoding.createEncoder();
      encoding.writeVarUint(e, 0);
      encoding.writeVarUint(e, 2);
      encoding.writeVarUint8Array(e, update);
      ws.send(encoding.toUint8Array(e));
      resolve();
    });
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
  });
  await new Promise<void>((resolve) => {
    ws.once('close', () => resolve());
    // The update is taken in order before the close is seen.
    ws.close();
  });
}

/** A Y.Doc synced by the SDK: `client.document(name, doc)` over the client's regular connection. */
export interface SdkDocument {
  readonly client: SwitchboardClient;
  readonly provider: DocumentProvider;
  readonly doc: Y.Doc;
  readonly awareness: DocumentProvider['awareness'];
  readonly synced: boolean;
  whenSynced(): Promise<void>;
  on: DocumentProvider['on'];
  /** Ends the provider and the client's connection. */
  destroy(): void;
}

/** Connects an SDK client to `url` (a hub's HTTP URL, or several: reconnects try the next) and syncs `doc` as `name`. */
export function sdkDocument(
  name: string,
  doc: Y.Doc,
  options: {
    url: string | string[];
    token: string;
    backoff?: { minMs: number; maxMs: number };
    codec?: 'json' | 'msgpack';
    WebSocket?: WebSocketConstructor;
  },
): SdkDocument {
  const urls = (typeof options.url === 'string' ? [options.url] : options.url).map((u) => `${u.replace(/^http/, 'ws')}/ws`);
  const client = new SwitchboardClient(urls, {
    token: options.token,
    backoff: { factor: 2, ...(options.backoff ?? { minMs: 50, maxMs: 300 }) },
    ...(options.codec ? { codec: options.codec } : {}),
    ...(options.WebSocket ? { WebSocket: options.WebSocket } : {}),
  });
  const provider = client.document(name, doc);
  client.connect();
  return {
    client,
    provider,
    doc,
    awareness: provider.awareness,
    get synced() {
      return provider.synced;
    },
    whenSynced: () => provider.whenSynced(),
    on: (event, fn) => provider.on(event, fn),
    destroy: () => {
      provider.destroy();
      client.disconnect();
    },
  };
}
