import { withTimeout } from '../limits/timeout.js';
import type { Logger } from 'pino';
import type { NamespaceOptions } from '../config/options.js';
import { APP_ERROR_CODE_MIN, HubError } from '../protocol/errors.js';
import type { ProxyHooks } from '../proxy/proxy-hooks.js';
import type { ClientContext, HubHooks, RpcHandler } from './hooks.js';

/**
 * The application's hooks and RPC handlers, each call bounded by limits.hookTimeoutMs (past it
 * the command fails with 115, temporary) so a hook that never settles cannot hang a session;
 * then the proxy hooks (docs/backend.md), each bounded by its endpoint's timeoutMs. Order: the
 * in-process hook first, then the proxy (a publish proxy sees the data onPublish returned); an
 * RPC registered in process answers its method, the RPC proxy every other method.
 */
export class GuardedHooks {
  private readonly rpcs = new Map<string, RpcHandler>();

  constructor(
    private readonly hooks: HubHooks,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
    readonly proxy?: ProxyHooks,
  ) {}

  connect(ctx: ClientContext): Promise<void> {
    const hook = this.hooks.onConnect;
    return hook ? this.bounded('onConnect', async () => hook(ctx)) : Promise.resolve();
  }

  /** Resolves with the subscribe proxy's channel info (presence carries it), if any. */
  async subscribe(ctx: ClientContext, channel: string, ns: NamespaceOptions): Promise<unknown> {
    const hook = this.hooks.onSubscribe;
    if (hook) await this.bounded('onSubscribe', async () => hook(ctx, channel));
    return this.proxy?.subscribe(ctx, channel, ns);
  }

  /** Whether a subscribe in `ns` runs no hook and no proxy (its rights are the rules alone). */
  subscribeIsRulesOnly(ns: NamespaceOptions): boolean {
    return !this.hooks.onSubscribe && !this.proxy?.forwards('subscribe', ns);
  }

  /** Whether a publish in `ns` runs no hook and no proxy (the data is published as given). */
  publishIsPassThrough(ns: NamespaceOptions): boolean {
    return !this.hooks.onPublish && !this.proxy?.forwards('publish', ns);
  }

  /** The data to publish: the hook's replacement, then the publish proxy's, or `data` itself. */
  async publish(ctx: ClientContext, channel: string, ns: NamespaceOptions, data: unknown, idempotencyKey?: string): Promise<unknown> {
    const hook = this.hooks.onPublish;
    let out = data;
    if (hook) {
      const replaced = await this.bounded('onPublish', async () => hook(ctx, channel, data));
      if (replaced !== undefined) out = replaced;
    }
    return this.proxy ? this.proxy.publish(ctx, channel, ns, out, idempotencyKey) : out;
  }

  registerRpc(name: string, handler: RpcHandler): void {
    this.rpcs.set(name, handler);
  }

  /** Runs an RPC handler; its own errors (≥ 1000, or 103) reach the client, others are 100. */
  async rpc(ctx: ClientContext, method: string, data: unknown): Promise<unknown> {
    const handler = this.rpcs.get(method);
    if (!handler && this.proxy?.hasRpc) return this.proxy.rpc(ctx, method, data);
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
