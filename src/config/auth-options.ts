import { z } from 'zod';
import { nonNegativeInt } from './option-primitives.js';

/** Token verification: one key (secret, public key or JWKS URL) and the claims checked. */
export const authSchema = z
  .object({
    /** HS256 secret (at least 32 bytes). */
    secret: z.string().min(32, 'must be at least 32 characters').optional(),
    /** PEM SPKI public key for RS256/ES256 tokens. */
    publicKey: z.string().optional(),
    /** JWKS URL for RS256/ES256 tokens. */
    jwksUrl: z.url().optional(),
    /** Accepted algorithms; defaults follow the key kind (HS256, or RS256 + ES256). */
    algorithms: z
      .array(z.enum(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'PS256']))
      .min(1)
      .optional(),
    audience: z.union([z.string(), z.array(z.string())]).optional(),
    issuer: z.union([z.string(), z.array(z.string())]).optional(),
    /** Seconds of clock skew tolerated on exp/nbf. */
    clockToleranceSeconds: nonNegativeInt.default(0),
    /** Whether connections without a token are accepted (as user ''). */
    allowAnonymous: z.boolean().default(false),
  })
  .strict()
  .superRefine((auth, ctx) => {
    const keys = [auth.secret, auth.publicKey, auth.jwksUrl].filter((k) => k !== undefined).length;
    if (keys > 1) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'set only one of auth.secret, auth.publicKey, auth.jwksUrl' });
    const hmac = auth.algorithms?.some((a) => a.startsWith('HS'));
    const asym = auth.algorithms?.some((a) => !a.startsWith('HS'));
    if (auth.secret !== undefined && asym) {
      ctx.addIssue({ code: 'custom', path: ['algorithms'], message: 'auth.secret takes only HS* algorithms' });
    }
    if ((auth.publicKey !== undefined || auth.jwksUrl !== undefined) && hmac) {
      ctx.addIssue({ code: 'custom', path: ['algorithms'], message: 'auth.publicKey/jwksUrl take only RS*/ES*/PS* algorithms' });
    }
  });
