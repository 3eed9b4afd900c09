import { signToken } from '../auth/token.js';
import { parse, UsageError } from './args.js';
import { tokenSecret } from './credentials.js';

export { TOKEN_USAGE } from './help.js';

/** Prints a JWT for a user, signed with the server's secret. */
export async function tokenCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { user: { type: 'string' }, ttl: { type: 'string' }, channels: { type: 'string' } }, 0);
  if (!values.user) throw new UsageError('--user is required');
  const ttl = values.ttl ?? '1h';
  if (!/^\d+[smhd]?$/.test(ttl)) throw new UsageError(`--ttl must look like 90, 30m, 1h or 7d, got ${JSON.stringify(ttl)}`);
  const token = await signToken({
    secret: tokenSecret(),
    user: values.user,
    ttl: /^\d+$/.test(ttl) ? Number(ttl) : ttl,
    ...(values.channels ? { channels: values.channels.split(',').filter(Boolean) } : {}),
  });
  process.stdout.write(`${token}\n`);
}
