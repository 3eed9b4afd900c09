import type { HistoryOptions } from '../stream/types.js';
import type { HubOptions, NamespaceOptions } from '../config/options.js';
import { HubError } from '../protocol/errors.js';

/** Longest channel name, in bytes. */
export const MAX_CHANNEL_BYTES = 255;
const CHANNEL_CHARS = /^[A-Za-z0-9_.\-:@#,=/~]+$/;

/** Bytes of a user id kept as they are in a channel name; every other byte is `~XX`. */
const USER_ID_KEEP = /^[A-Za-z0-9_.@-]$/;
const USER_ID_ENCODED = /^(?:[A-Za-z0-9_.@-]|~[0-9A-F]{2})*$/;
const HEX = '0123456789ABCDEF';
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const hexByte = (byte: number): string => `~${HEX[byte >> 4]}${HEX[byte & 15]}`;

/**
 * A user id as it appears in a channel name (after `#`), exactly and injectively: the bytes
 * `A-Z a-z 0-9 _ . @ -` stay as they are, every other UTF-8 byte (`~` included) becomes `~XX`
 * in uppercase hex. `auth0|abc` → `auth0~7Cabc`, `a,b` → `a~2Cb`, `José` → `Jos~C3~A9`.
 * A lone surrogate (not Unicode, but possible in a JS string) is written as its 3-byte
 * WTF-8 form instead of U+FFFD, so it collides with no other id; such names never decode.
 */
export function encodeUserId(user: string): string {
  let out = '';
  for (const ch of user) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) out += USER_ID_KEEP.test(ch) ? ch : hexByte(cp);
    else if (cp < 0x800) out += hexByte(0xc0 | (cp >> 6)) + hexByte(0x80 | (cp & 63));
    else if (cp < 0x10000) out += hexByte(0xe0 | (cp >> 12)) + hexByte(0x80 | ((cp >> 6) & 63)) + hexByte(0x80 | (cp & 63));
    else
      out += hexByte(0xf0 | (cp >> 18)) + hexByte(0x80 | ((cp >> 12) & 63)) + hexByte(0x80 | ((cp >> 6) & 63)) + hexByte(0x80 | (cp & 63));
  }
  return out;
}

/**
 * The inverse of `encodeUserId`; undefined unless `encoded` is exactly what `encodeUserId`
 * gives for some user id: only kept characters and `~XX` (uppercase hex) of bytes that are not
 * kept, forming valid UTF-8. So every user id has one spelling in channel names.
 */
export function decodeUserId(encoded: string): string | undefined {
  if (!USER_ID_ENCODED.test(encoded)) return undefined;
  if (!encoded.includes('~')) return encoded;
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    if (encoded[i] === '~') {
      const byte = parseInt(encoded.slice(i + 1, i + 3), 16);
      if (USER_ID_KEEP.test(String.fromCharCode(byte))) return undefined;
      bytes.push(byte);
      i += 2;
    } else {
      bytes.push(encoded.charCodeAt(i));
    }
  }
  try {
    return strictUtf8.decode(new Uint8Array(bytes));
  } catch {
    return undefined;
  }
}

/**
 * The channel limited to `users`: `namespace:#user1,user2` with each id encoded. It is only
 * usable if the result fits in MAX_CHANNEL_BYTES (else resolving it answers 107).
 */
export function userChannel(namespace: string, users: readonly string[]): string {
  return `${namespace}:#${users.map(encodeUserId).join(',')}`;
}

/** The user's notifications channel, `notifications:#<encoded user>` (what `hub.notify` publishes on). */
export function notificationsChannel(user: string): string {
  return userChannel('notifications', [user]);
}

/** A channel name, resolved against the configured namespaces. */
export interface ResolvedChannel {
  name: string;
  namespace: string;
  options: NamespaceOptions;
  history: HistoryOptions;
  /**
   * Users allowed by a `#` boundary (`dm:#alice,bob`), decoded (`dm:#a~2Cb` allows the one user
   * `a,b`); undefined when the channel is not user-limited.
   */
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
    if (hash !== -1) {
      const users: string[] = [];
      // Split before decoding: an encoded `,` (`~2C`) stays inside its user id.
      for (const part of name.slice(hash + 1).split(',')) {
        if (part === '') continue;
        const user = decodeUserId(part);
        if (user === undefined) {
          throw new HubError(107, 'channel: the users after # must be encoded user ids (A-Z a-z 0-9 _ . @ -, other bytes as ~XX)');
        }
        users.push(user);
      }
      resolved.users = users;
    }
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(name, resolved);
    return resolved;
  }

  private historyOf(ns: NamespaceOptions): HistoryOptions {
    let h = this.histories.get(ns);
    if (!h) {
      h = { size: ns.history.size, ttlMs: ns.history.ttlSeconds * 1000, metaTtlMs: ns.history.metaTtlSeconds * 1000 };
      if (ns.delivery === 'latest') h.latest = true;
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

/**
 * Checks the right of `user` (with its claims) to subscribe; throws HubError 103 if refused. A
 * user-limited channel compares the decoded user ids after `#` with `user` as it is.
 */
export function assertCanSubscribe(channel: ResolvedChannel, user: string, claims: readonly string[]): void {
  if (channel.users !== undefined && (user === '' || !channel.users.includes(user))) {
    throw new HubError(103, 'channel is limited to other users');
  }
  if (channel.options.subscribe === 'claim' && !claimGrants(claims, channel)) {
    throw new HubError(103, 'token does not grant this channel');
  }
}
