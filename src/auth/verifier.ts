import { createSecretKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, importSPKI, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { HubOptions } from '../config/options.js';
import { HubError } from '../protocol/errors.js';

/** What a verified token says about a connection. */
export interface Identity {
  user: string;
  /** Unix seconds; undefined for a token without exp or an anonymous connection. */
  expires?: number;
  /** Channel names or `namespace:*` patterns granted by the `channels` claim. */
  channels: readonly string[];
  /** Free-form connection info from the `info` claim, shown in presence. */
  info?: unknown;
  /** Authenticated by the connect proxy (refreshed through the refresh proxy, not a token). */
  proxied?: boolean;
  /**
   * Channels the server subscribes the connection to at connect (server-side subscriptions):
   * the connect proxy's `channels`, or the JWT `subs` claim. Each is checked as a client subscribe.
   */
  subscriptions?: readonly string[];
}

type Key = Uint8Array | CryptoKey | KeyObject | JWTVerifyGetKey;

/**
 * Verifies connection tokens with jose. Algorithms are pinned by key kind (an HMAC secret
 * takes only HS*, a public key only RS/ES/PS), which refuses `alg: none` and algorithm
 * confusion; exp and nbf are always checked, aud and iss when configured.
 */
export class TokenVerifier {
  private key: Promise<Key> | undefined;
  private readonly algorithms: string[];

  constructor(private readonly auth: HubOptions['auth']) {
    if (auth.secret !== undefined) {
      this.algorithms = auth.algorithms ? [...auth.algorithms] : ['HS256'];
      // A KeyObject made once: jose would import raw bytes again on every verification.
      this.key = Promise.resolve(createSecretKey(Buffer.from(auth.secret, 'utf8')));
    } else if (auth.publicKey !== undefined) {
      this.algorithms = auth.algorithms ? [...auth.algorithms] : ['RS256', 'ES256'];
      const pem = auth.publicKey;
      // One key object per algorithm: jose binds an imported key to its algorithm.
      this.key = Promise.all(
        this.algorithms.map((alg) =>
          importSPKI(pem, alg)
            .then((k) => [alg, k] as const)
            .catch(() => undefined),
        ),
      ).then((pairs) => {
        const byAlg = new Map(pairs.filter((p) => p !== undefined));
        if (byAlg.size === 0) throw new TypeError('auth.publicKey: not a PEM public key for the configured algorithms');
        const getKey: JWTVerifyGetKey = (header) => {
          const key = byAlg.get(header.alg);
          if (!key) throw new joseErrors.JOSEAlgNotAllowed('algorithm not allowed');
          return key;
        };
        return getKey;
      });
    } else if (auth.jwksUrl !== undefined) {
      this.algorithms = auth.algorithms ? [...auth.algorithms] : ['RS256', 'ES256'];
      this.key = Promise.resolve(createRemoteJWKSet(new URL(auth.jwksUrl)));
    } else {
      this.algorithms = [];
    }
  }

  /** Fails fast at startup on an unusable key. */
  async ready(): Promise<void> {
    await this.key;
  }

  get anonymousAllowed(): boolean {
    return this.auth.allowAnonymous;
  }

  /** Verifies a token, or accepts no token when anonymous connections are allowed. */
  async verify(token: string | undefined): Promise<Identity> {
    if (token === undefined || token === '') {
      if (this.auth.allowAnonymous) return { user: '', channels: [] };
      throw new HubError(101, 'token required');
    }
    if (!this.key) throw new HubError(101, 'tokens are not accepted by this server');
    let payload: JWTPayload;
    try {
      const key = await this.key;
      const options = {
        algorithms: this.algorithms,
        clockTolerance: this.auth.clockToleranceSeconds,
        ...(this.auth.audience !== undefined ? { audience: this.auth.audience as string | string[] } : {}),
        ...(this.auth.issuer !== undefined ? { issuer: this.auth.issuer as string | string[] } : {}),
      };
      payload = (typeof key === 'function' ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options)).payload;
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new HubError(109, 'token expired');
      throw new HubError(101, `invalid token: ${describe(err)}`);
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new HubError(101, 'invalid token: sub claim required');
    const channels = payload.channels;
    if (channels !== undefined && (!Array.isArray(channels) || channels.some((c) => typeof c !== 'string'))) {
      throw new HubError(101, 'invalid token: channels claim must be an array of strings');
    }
    const identity: Identity = { user: payload.sub, channels: (channels as string[] | undefined) ?? [] };
    const subs = payload.subs;
    if (subs !== undefined) {
      if (!Array.isArray(subs) || subs.some((c) => typeof c !== 'string' || c === '' || c.length > 255)) {
        throw new HubError(101, 'invalid token: subs claim must be an array of channel names');
      }
      identity.subscriptions = subs as string[];
    }
    if (payload.exp !== undefined) identity.expires = payload.exp;
    if (payload.info !== undefined) identity.info = payload.info;
    return identity;
  }
}

function describe(err: unknown): string {
  if (err instanceof joseErrors.JOSEError) return err.code.replace(/^ERR_/, '').toLowerCase().replaceAll('_', ' ');
  return 'malformed';
}
