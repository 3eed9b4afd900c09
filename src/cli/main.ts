#!/usr/bin/env node
import { OptionsError } from '../config/options.js';
import { ConfigError } from '../config/load.js';
import { UsageError } from './args.js';
import { migrateCommand, MIGRATE_USAGE } from './migrate.js';
import { publishCommand, PUBLISH_USAGE } from './publish.js';
import { serveCommand, SERVE_USAGE } from './serve.js';
import { tailCommand, TAIL_USAGE } from './tail.js';
import { tokenCommand, TOKEN_USAGE } from './token.js';

const USAGE = `usage:
  ${SERVE_USAGE}
  ${TOKEN_USAGE}
  ${TAIL_USAGE}
  ${PUBLISH_USAGE}
  ${MIGRATE_USAGE}

environment: SWITCHBOARD_PORT, SWITCHBOARD_DATA_DIR (default ./.switchboard), SWITCHBOARD_TOKEN_SECRET,
SWITCHBOARD_API_KEY, SWITCHBOARD_REDIS_URL, SWITCHBOARD_REDIS_CLUSTER (host:port,…), SWITCHBOARD_POSTGRES_URL,
SWITCHBOARD_LOG_LEVEL`;

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = {
  serve: serveCommand,
  token: tokenCommand,
  tail: tailCommand,
  publish: publishCommand,
  migrate: migrateCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help' || rest.includes('--help')) {
    process.stdout.write(`${USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command: ${name} (serve, token, tail, publish, migrate)`);
  await command(rest);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`switchboard: ${message.split('\n')[0]}\n`);
    process.exit(err instanceof UsageError || err instanceof OptionsError || err instanceof ConfigError ? 2 : 1);
  },
);
