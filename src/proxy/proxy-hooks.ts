import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Identity } from '../auth/verifier.js';
import type { NamespaceOptions, ProxyEndpoint, ProxyOptions } from '../config/options.js';
import { HubError } from '../protocol/errors.js';
import { ProxyClient, type ProxyKind, type ProxyRequest } from './proxy-client.js';
import type { ProxyStats } from './proxy-stats.js';

/** What the proxy needs to know of the connection that asks (a hub ClientContext fits). */
export interface ProxyCaller {
  readonly client: string;
  readonly transport: 'websocket' | 'sse';
  readonly headers: IncomingHttpHeaders;
  readonly user: string;
  readonly name?: string;
  readonly info?: unknown;
}

const connectResult = z
  .object({
    user: z.string().max(1024),
    expiresAt: z.number().int().positive().optional(),
    info: z.unknown().optional(),
    channels: z.array(z.string().min(1).max(255)).max(1000).optional(),
    grants: z.array(z.string().min(1).max(255)).max(1000).optional(),
  })
  .loose();

const refreshResult = z.object({ expiresAt: z.number().int().positive().optional(), expired: z.boolean().optional() }).loose();

/**
 * The proxy hooks of one hub (docs/backend.md): connect, refresh, subscribe, publish and RPC
 * forwarded to the backend, each when configured (subscribe and publish per namespace too).
 */
export class ProxyHooks {
  private readonly client: ProxyClient;

  constructor(
    private readonly options: ProxyOptions,
    logger: Logger,
  ) {
    this.client = new ProxyClient(options, logger);
  }

  /** Requests by kind and outcome, and those in flight (the admin UI's; metrics observe it). */
  get stats(): ProxyStats {
    return this.client.stats;
  }

  /** Whether a connection with (or without) a token is authenticated by the backend. */
  authenticates(hasToken: boolean): boolean {
    return this.options.connect !== undefined && (!hasToken || this.options.connectMode === 'always');
  }

  get refreshes(): boolean {
    return this.options.refresh !== undefined;
  }

  get hasRpc(): boolean {
    return this.options.rpc !== undefined;
  }

  /** The identity the backend gives the connection; its `error` refuses the connection. */
  async connect(caller: ProxyCaller): Promise<Identity> {
    const endpoint = this.options.connect!;
    const result = await this.call('connect', endpoint, caller, {}, (r) => this.parse('connect', connectResult, r));
    // `channels` are subscribed server-side; `grants` are what a JWT's `channels` claim grants.
    const identity: Identity = { user: result.user, channels: result.grants ?? [], proxied: true };
    if (result.channels !== undefined && result.channels.length > 0) identity.subscriptions = result.channels;
    if (result.expiresAt !== undefined) identity.expires = result.expiresAt;
    if (result.info !== undefined) identity.info = result.info;
    return identity;
  }

  /**
   * A proxy-authenticated session about to expire: the backend extends it (a later `expiresAt`)
   * or ends it (`expired: true`, or no later `expiresAt`). Resolves with the new expiry, or undefined to end.
   */
  async refresh(caller: ProxyCaller): Promise<number | undefined> {
    const endpoint = this.options.refresh!;
    const body: Partial<ProxyRequest> = { user: caller.user };
    if (caller.info !== undefined) body.info = caller.info;
    const result = await this.call('refresh', endpoint, caller, body, (r) => this.parse('refresh', refreshResult, r));
    const now = Math.floor(Date.now() / 1000);
    if (result.expired === true || result.expiresAt === undefined || result.expiresAt <= now) return undefined;
    return result.expiresAt;
  }

  /** Allowed unless the backend refuses; resolves with the channel info it gave, if any. */
  async subscribe(caller: ProxyCaller, channel: string, ns: NamespaceOptions): Promise<unknown> {
    const endpoint = this.endpoint('subscribe', ns);
    if (!endpoint) return undefined;
    return (await this.call('subscribe', endpoint, caller, { user: caller.user, channel })).info;
  }

  /** The data to publish: the backend's `data` when it returned one, else `data` as it was. */
  async publish(caller: ProxyCaller, channel: string, ns: NamespaceOptions, data: unknown, idempotencyKey?: string): Promise<unknown> {
    const endpoint = this.endpoint('publish', ns);
    if (!endpoint) return data;
    const body: Partial<ProxyRequest> = { user: caller.user, channel, data };
    if (idempotencyKey !== undefined) body.idempotencyKey = idempotencyKey;
    const result = await this.call('publish', endpoint, caller, body);
    return result.data === undefined ? data : result.data;
  }

  async rpc(caller: ProxyCaller, method: string, data: unknown): Promise<unknown> {
    const result = await this.call('rpc', this.options.rpc!, caller, { user: caller.user, method, data: data ?? null });
    return result.data ?? null;
  }

  /** Whether subscribe (or publish) in namespace `ns` goes to the backend. */
  forwards(kind: 'subscribe' | 'publish', ns: NamespaceOptions): boolean {
    return this.endpoint(kind, ns) !== undefined;
  }

  private endpoint(kind: 'subscribe' | 'publish', ns: NamespaceOptions): ProxyEndpoint | undefined {
    const own = ns.proxy?.[kind];
    return own === null ? undefined : (own ?? this.options[kind]);
  }

  private call<T = Record<string, unknown>>(
    kind: ProxyKind,
    endpoint: ProxyEndpoint,
    caller: ProxyCaller,
    extra: Partial<ProxyRequest>,
    parse?: (result: Record<string, unknown>) => T,
  ): Promise<T> {
    const request: ProxyRequest = {
      client: caller.client,
      transport: caller.transport,
      headers: ProxyClient.forwarded(endpoint, caller.headers),
      ...extra,
    };
    if (caller.name !== undefined) request.name = caller.name;
    return this.client.call(kind, endpoint, caller.client, request, parse);
  }

  private parse<T>(kind: ProxyKind, schema: z.ZodType<T>, result: Record<string, unknown>): T {
    const parsed = schema.safeParse(result);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new HubError(117, `backend ${kind} answered an invalid result: ${issue?.path.join('.') || 'result'}: ${issue?.message ?? ''}`);
    }
    return parsed.data;
  }
}
