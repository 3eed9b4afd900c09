import { jwtVerify } from 'jose';

/** The peers verify the same HS256 JWT with the same library as Switchboard (jose). */
export function jwtVerifier(secret: string): (token: unknown) => Promise<string> {
  const key = new TextEncoder().encode(secret);
  return async (token) => {
    if (typeof token !== 'string') throw new Error('token required');
    const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'] });
    if (typeof payload.sub !== 'string') throw new Error('sub required');
    return payload.sub;
  };
}
