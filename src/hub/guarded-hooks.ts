import { withTimeout } from '../limits/timeout.js';
import type { Logger } from 'pino';
import { APP_ERROR_CODE_MIN, HubError } from '../protocol/errors.js';
import type { ClientContext, HubHooks, RpcHandler } from './hooks.js';

/**
 * The application's hooks and RPC handlers, each call bounded by limits.hookTimeoutMs (past it
 * the command fails with 115, temporary) so a hook that never settles cannot hang a session.
 */
export class GuardedHooks {
  private readonly rpcs = new Map<string, RpcHandler>();

  constructor(
    private readonly hooks: HubHooks,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {}

  get hasPublishHook(): boolean {
    return this.hooks.onPublish !== undefined;
  }

  connect(ctx: ClientContext): Promise<void> {
    const hook = this.hooks.onConnect;
    return hook ? this.bounded('onConnect', async () => hook(ctx)) : Promise.resolve();
  }

  subscribe(ctx: ClientContext, channel: string): Promise<void> {
    const hook = this.hooks.onSubscribe;
    return hook ? this.bounded('onSubscribe', async () => hook(ctx, channel)) : Promise.resolve();
  }

  /** The data to publish: the hook's replacement, or `data` itself. */
  async publish(ctx: ClientContext, channel: string, data: unknown): Promise<unknown> {
    const hook = this.hooks.onPublish;
    if (!hook) return data;
    const replaced = await this.bounded('onPublish', async () => hook(ctx, channel, data));
    return replaced === undefined ? data : replaced;
  }

  registerRpc(name: string, handler: RpcHandler): void {
    this.rpcs.set(name, handler);
  }

  /** Runs an RPC handler; its own errors (≥ 1000, or 103) reach the client, others are 100. */
  async rpc(ctx: ClientContext, method: string, data: unknown): Promise<unknown> {
    const handler = this.rpcs.get(method);
    if (!handler) throw new HubError(104, `rpc method not found: ${method}`);
    try {
      return (await this.bounded(`rpc ${method}`, async () => handler(ctx, data))) ?? null;
    } catch (err) {
      if (err instanceof HubError && (err.code >= APP_ERROR_CODE_MIN || err.code === 103 || err.code === 115)) throw err;
      this.logger.error({ err, method }, 'rpc handler failed');
      throw new HubError(100);
    }
  }

  private bounded<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return withTimeout(fn(), this.timeoutMs, () => {
      this.logger.warn({ hook: what, timeoutMs: this.timeoutMs }, 'hook timed out');
      return new HubError(115, `${what} timed out`);
    });
  }
}
