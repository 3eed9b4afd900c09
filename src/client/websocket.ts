import type { WebSocketConstructor } from './types.js';

/** The part of the WebSocket API the client uses; the browser's and `ws`'s both have it. */
export interface WebSocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string | Uint8Array): void;
  /** Set to 'arraybuffer' for MessagePack (browsers default to Blob). */
  binaryType?: string;
  close(code?: number, reason?: string): void;
  terminate?(): void;
}

/** The WebSocket to use: the given one, the global one (browsers, Node ≥ 22), else `ws` (Node 20). */
export async function resolveWebSocket(given: WebSocketConstructor | undefined): Promise<WebSocketConstructor> {
  if (given) return given;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global) return global;
  const mod = (await import('ws')) as unknown as { WebSocket?: WebSocketConstructor; default?: WebSocketConstructor };
  const ctor = mod.WebSocket ?? mod.default;
  if (!ctor) throw new Error('install the "ws" package or pass options.WebSocket');
  return ctor;
}
