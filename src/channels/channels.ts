import type { HistoryOptions } from '../stream/types.js';
import type { HubOptions, NamespaceOptions } from '../config/options.js';
import { HubError } from '../protocol/errors.js';

/** Longest channel name, in bytes. */
export const MAX_CHANNEL_BYTES = 255;
const CHANNEL_CHARS = /^[A-Za-z0-9_.\-:@#,=/~]+$/;

/** A channel name, resolved against the configured namespaces. */
export interface ResolvedChannel {
  name: string;
  namespace: string;
  options: NamespaceOptions;
  history: HistoryOptions;
  /** Users allowed by a `#` boundary (`dm:#alice,bob`); undefined when the channel is not user-limited. */
  users?: readonly string[];
}

/** Resolves channel names once per name and caches the result (names are immutable). */
export class ChannelResolver {
  private readonly cache = new Map<string, ResolvedChannel>();
  private readonly histories = new Map<NamespaceOptions, HistoryOptions>();

  constructor(private readonly options: HubOptions) {}

  /** Throws HubError 107 for a malformed name and 102 for an unknown namespace. */
  resolve(name: string): ResolvedChannel {
    const cached = this.cache.get(name);
    if (cached) return cached;
    if (name.length === 0 || Buffer.byteLength(name) > MAX_CHANNEL_BYTES || !CHANNEL_CHARS.test(name)) {
      throw new HubError(107, `channel: must be 1-${MAX_CHANNEL_BYTES} bytes of A-Z a-z 0-9 _ . - : @ # , = / ~`);
    }
    const colon = name.indexOf(':');
    const namespace = colon === -1 ? '' : name.slice(0, colon);
    const options = namespace === '' ? this.options.defaultNamespace : this.options.namespaces[namespace];
    if (!options) throw new HubError(102, `unknown namespace: ${namespace}`);
    const resolved: ResolvedChannel = { name, namespace, options, history: this.historyOf(options) };
    const hash = name.indexOf('#');
    if (hash !== -1)
      resolved.users = name
        .slice(hash + 1)
        .split(',')
        .filter((u) => u !== '');
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(name, resolved);
    return resolved;
  }

  private historyOf(ns: NamespaceOptions): HistoryOptions {
    let h = this.histories.get(ns);
    if (!h) {
      h = { size: ns.history.size, ttlMs: ns.history.ttlSeconds * 1000, metaTtlMs: ns.history.metaTtlSeconds * 1000 };
      this.histories.set(ns, h);
    }
    return h;
  }
}

/** Whether a JWT `channels` claim grants the channel: an exact name or a `namespace:*` pattern. */
export function claimGrants(claims: readonly string[], channel: ResolvedChannel): boolean {
  for (const c of claims) {
    if (c === channel.name) return true;
    if (c.endsWith('*') && channel.name.startsWith(c.slice(0, -1))) return true;
  }
  return false;
}

/** Checks the right of `user` (with its claims) to subscribe; throws HubError 103 if refused. */
export function assertCanSubscribe(channel: ResolvedChannel, user: string, claims: readonly string[]): void {
  if (channel.users !== undefined && (user === '' || !channel.users.includes(user))) {
    throw new HubError(103, 'channel is limited to other users');
  }
  if (channel.options.subscribe === 'claim' && !claimGrants(claims, channel)) {
    throw new HubError(103, 'token does not grant this channel');
  }
}
