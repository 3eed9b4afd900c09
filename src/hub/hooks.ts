import type { IncomingHttpHeaders } from 'node:http';

/** What hooks and RPC handlers know about the client that called. */
export interface ClientContext {
  user: string;
  client: string;
  transport: 'websocket' | 'sse';
  /** The `info` claim of the client's token. */
  info?: unknown;
  /** The `name` the client gave in `connect` (informational: an app or device name). */
  name?: string;
  headers: IncomingHttpHeaders;
}

/**
 * Application hooks. Throw a HubError (code ≥ 1000 for your own, or 103 permission denied) to
 * refuse; anything else thrown becomes an internal error and is not shown to the client.
 */
export interface HubHooks {
  /** After the token is verified, before the connect reply. */
  onConnect?(ctx: ClientContext): void | Promise<void>;
  /** After built-in permission checks pass. */
  onSubscribe?(ctx: ClientContext, channel: string): void | Promise<void>;
  /** After built-in permission checks pass; return replacement data, or undefined to keep it. */
  onPublish?(ctx: ClientContext, channel: string, data: unknown): unknown;
}

export type RpcHandler = (ctx: ClientContext, data: unknown) => unknown;
