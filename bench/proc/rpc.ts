/**
 * Request/response over a child process's IPC channel: the parent sends `{rpc, cmd, args}`,
 * the child answers `{rpc, ok, result | error}`. Used by the server and load-generator children.
 */
export interface RpcRequest {
  rpc: number;
  cmd: string;
  args?: unknown;
}

export interface RpcResponse {
  rpc: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

export type RpcHandler = (args: any) => unknown;

/** Child side: answers the parent's commands; the process exits when the parent goes away. */
export function serveRpc(handlers: Record<string, RpcHandler>): void {
  const send = process.send?.bind(process);
  if (!send) throw new Error('serveRpc: this process has no IPC channel (start it with fork)');
  process.on('message', (msg: RpcRequest) => {
    if (!msg || typeof msg.rpc !== 'number') return;
    const handler = handlers[msg.cmd];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown command: ${msg.cmd}`);
        return handler(msg.args);
      })
      .then(
        (result) => send({ rpc: msg.rpc, ok: true, result } satisfies RpcResponse),
        (err: unknown) => send({ rpc: msg.rpc, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
  // The orchestrator died or let go of us: never linger.
  process.on('disconnect', () => process.exit(0));
}
