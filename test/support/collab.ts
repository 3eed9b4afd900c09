/** Helpers of the test/collab-*.test.ts suites: y-websocket providers in Node, and waiting for convergence. */
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
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

export function whenSynced(p: WebsocketProvider): Promise<void> {
  return until(() => p.synced, 'y-websocket provider synced');
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
