import { SignJWT } from 'jose';

export interface SignTokenOptions {
  /** HS256 secret, the same as the server's `auth.secret`. */
  secret: string;
  user: string;
  /** Lifetime, as seconds or a jose duration such as `1h` or `30m`. */
  ttl?: number | string;
  /** Channel names or `namespace:*` patterns for namespaces with `subscribe: "claim"`. */
  channels?: string[];
  /** Connection info shown in presence. */
  info?: unknown;
  audience?: string;
  issuer?: string;
}

/** Signs an HS256 connection token (for the CLI, tests and backends written in Node). */
export async function signToken(options: SignTokenOptions): Promise<string> {
  const claims: Record<string, unknown> = {};
  if (options.channels) claims.channels = options.channels;
  if (options.info !== undefined) claims.info = options.info;
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(options.user).setIssuedAt();
  const ttl = options.ttl ?? '1h';
  jwt = jwt.setExpirationTime(typeof ttl === 'number' ? Math.floor(Date.now() / 1000) + ttl : ttl);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  return jwt.sign(new TextEncoder().encode(options.secret));
}
