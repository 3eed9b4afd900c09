/** Helpers of the test/collab-*.test.ts suites: y-websocket providers in Node, and waiting for convergence. */
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';
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
