import { signToken } from '../auth/token.js';
import { ClientError, SwitchboardClient } from '../client/index.js';
import { shouldReconnect } from '../client/constants.js';
import { parse, UsageError } from './args.js';
import { tokenSecret } from './credentials.js';
import { TAIL_USAGE } from './help.js';

export { TAIL_USAGE } from './help.js';

/**
 * Subscribes with the client SDK (reconnects and recovers by itself) and prints each
 * publication's data as one compact JSON line. Ends with an error on a terminal refusal.
 */
export async function tailCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { url: { type: 'string' }, user: { type: 'string' }, token: { type: 'string' } }, 1);
  const channel = positionals[0];
  if (!channel) throw new UsageError(`usage: ${TAIL_USAGE}`);
  const url = new URL(values.url ?? 'ws://127.0.0.1:7070');
  if (url.protocol === 'http:' || url.protocol === 'https:') url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/ws';
  const user = values.user ?? 'cli';
  const given = values.token;
  // Read the secret now: a missing one is a one-line error, not a silent reconnect loop.
  const secret = given ? undefined : tokenSecret();
  const client = new SwitchboardClient(
    url.toString(),
    given ? { token: given } : { getToken: async () => signToken({ secret: secret!, user, ttl: '1h' }) },
  );

  await new Promise<void>((resolve, reject) => {
    const fail = (message: string): void => {
      client.disconnect();
      reject(new Error(message));
    };
    // The client retries quietly; say once per outage why there is nothing to print.
    const unreachable = new UnreachableNotice(url);
    client.on('state', (change) => {
      // The client only stops by itself on a terminal refusal: a refused connect (bad token,
      // no close code) or a terminal close code. Either way the tail is over.
      if (change.state === 'disconnected' && (change.code === undefined || !shouldReconnect(change.code))) {
        unreachable.stop();
        fail(change.reason.startsWith('connect refused') ? change.reason : `connection refused: ${change.reason}`);
      } else if (change.state === 'connected') {
        unreachable.stop();
        process.stderr.write(`tail: subscribed to ${channel} at ${url.toString()}\n`);
      } else if (change.state === 'connecting') {
        if (change.previous === 'connected') process.stderr.write(`tail: connection lost (${change.reason}); reconnecting\n`);
        unreachable.start();
      }
    });
    client.subscribe(channel, {
      onPublication: (pub) => process.stdout.write(`${JSON.stringify(pub.data)}\n`),
      onRecoveryFailed: () => process.stderr.write('tail: some publications could not be recovered after a reconnect\n'),
      onError: (err: ClientError) => {
        if (!err.temporary) fail(`subscribe failed: error ${err.code}: ${err.message}`);
      },
    });
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        unreachable.stop();
        client.disconnect();
        resolve();
      });
    }
    client.connect();
  });
}

/** While not connected after a grace period: one line on stderr saying why (probed over HTTP). */
class UnreachableNotice {
  private timer: NodeJS.Timeout | undefined;
  private told = false;

  constructor(
    private readonly url: URL,
    private readonly graceMs = 1_500,
  ) {}

  start(): void {
    if (this.timer || this.told) return;
    this.timer = setTimeout(() => void this.tell(), this.graceMs);
    this.timer.unref();
  }

  /** Connected (or over): the next outage is told again. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.told = false;
  }

  private async tell(): Promise<void> {
    const health = new URL('/healthz', this.url);
    health.protocol = this.url.protocol === 'wss:' ? 'https:' : 'http:';
    let cause: string;
    try {
      const res = await fetch(health, { signal: AbortSignal.timeout(2_000) });
      cause = `the server answers HTTP ${res.status} but not the WebSocket at ${this.url.pathname}`;
    } catch (err) {
      const c = (err as { cause?: { code?: string; message?: string } }).cause;
      cause = c?.code ?? c?.message ?? (err as Error).message;
    }
    if (this.timer === undefined) return; // connected meanwhile
    this.timer = undefined;
    this.told = true;
    process.stderr.write(`tail: cannot connect to ${this.url.toString()}: ${cause} (is \`switchboard serve\` running there?); still retrying\n`);
  }
}
