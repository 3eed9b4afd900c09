/**
 * How a Connection's bytes move: implemented by the WebSocket and the SSE transports.
 * A transport delivers whole frames; one frame may hold several `\n`-separated messages.
 */
export interface Transport {
  readonly kind: 'websocket' | 'sse';
  /** Sends one frame (UTF-8 JSON lines). */
  send(frame: Buffer): void;
  /** Bytes accepted by `send` but not yet written to the network. */
  readonly bufferedAmount: number;
  /** Closes with a code and reason; `terminate` drops the socket at once. */
  close(code: number, reason: string): void;
  terminate(): void;
  /** Calls `cb` once the bytes buffered now have been written (at most one pending callback). */
  onDrain?(cb: () => void): void;
}
