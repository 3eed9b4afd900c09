/**
 * A hub in a process of its own, for tests that kill it (SIGKILL) and start it again on the same
 * port and data directory. Run: `node --import tsx test/support/hub-process.ts '<options JSON>' <port>`.
 * Prints `ready <port>` on stdout once listening. SIGTERM closes it gracefully.
 */
import { createHub, type CreateHubOptions } from '../../src/index.js';

const options = JSON.parse(process.argv[2] ?? '{}') as CreateHubOptions;
const port = Number(process.argv[3] ?? 0);
const hub = createHub(options);
const listening = await hub.listen(port, '127.0.0.1');
process.stdout.write(`ready ${listening.port}\n`);

// Server-side publishes on request, one JSON line per command on stdin: {"channel","data"}.
let buffered = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  buffered += chunk;
  let nl: number;
  while ((nl = buffered.indexOf('\n')) !== -1) {
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    if (!line.trim()) continue;
    const cmd = JSON.parse(line) as { channel: string; data: unknown };
    void hub.publish(cmd.channel, cmd.data).then((pos) => process.stdout.write(`published ${JSON.stringify(pos)}\n`));
  }
});
// The test runner going away (stdin closed) ends this process too.
process.stdin.on('end', () => process.exit(0));

process.on('SIGTERM', () => {
  void hub.close().then(() => process.exit(0));
});
