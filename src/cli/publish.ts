import { parse, UsageError } from './args.js';
import { apiKey } from './credentials.js';
import { PUBLISH_USAGE } from './help.js';

export { PUBLISH_USAGE } from './help.js';

/** Publishes through the HTTP API and prints the resulting position as compact JSON. */
export async function publishCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { url: { type: 'string' }, 'idempotency-key': { type: 'string' } }, 2);
  const [channel, json] = positionals;
  if (!channel || json === undefined) throw new UsageError(`usage: ${PUBLISH_USAGE}`);
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    throw new UsageError(`JSON argument is not valid JSON: ${json}`);
  }
  const base = new URL(values.url ?? 'http://127.0.0.1:7070');
  const body: Record<string, unknown> = { channel, data };
  if (values['idempotency-key']) body.idempotencyKey = values['idempotency-key'];
  const target = new URL('/api/publish', base);
  const key = apiKey();
  let res: Response;
  try {
    res = await fetch(target, {
      method: 'POST',
      headers: { authorization: `apikey ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`cannot reach ${target.href}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) {
    let message = text;
    try {
      const err = (JSON.parse(text) as { error?: { code: number; message: string } }).error;
      if (err) message = `error ${err.code}: ${err.message}`;
    } catch {
      // not JSON: print as is
    }
    throw new Error(`publish failed (HTTP ${res.status}): ${message}`);
  }
  process.stdout.write(`${JSON.stringify(JSON.parse(text))}\n`);
}
