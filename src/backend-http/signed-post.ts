import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header every proxy request and webhook POST carries: `sha256=<hex HMAC-SHA256 of the raw body>`. */
export const SIGNATURE_HEADER = 'x-switchboard-signature';

export function sign(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Whether `signature` is the signature of `body` under `secret` (constant time). */
export function verifySignature(body: string, secret: string, signature: string | undefined): boolean {
  if (signature === undefined) return false;
  const expected = Buffer.from(sign(body, secret));
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface PostResult {
  status: number;
  text: string;
}

/** Why a POST got no HTTP answer: it took longer than its timeout, or the network failed. */
export class PostFailed extends Error {
  constructor(
    readonly reason: 'timeout' | 'network',
    message: string,
  ) {
    super(message);
    this.name = 'PostFailed';
  }
}

/**
 * POSTs a JSON body, signed with `secret`, and reads the whole answer, all within `timeoutMs`
 * (connect, headers and body alike): a backend that never answers cannot hold the caller.
 */
export async function signedPost(
  url: string,
  body: string,
  secret: string,
  headers: Readonly<Record<string, string>>,
  timeoutMs: number,
): Promise<PostResult> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(url, {
      method: 'POST',
      body,
      signal,
      redirect: 'error',
      headers: { ...headers, 'content-type': 'application/json', [SIGNATURE_HEADER]: sign(body, secret) },
    });
    return { status: res.status, text: await res.text() };
  } catch (err) {
    if (signal.aborted) throw new PostFailed('timeout', `no answer within ${timeoutMs} ms`);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new PostFailed('network', cause?.code ?? cause?.message ?? (err as Error).message);
  }
}
