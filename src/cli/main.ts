#!/usr/bin/env node
import { OptionsError } from '../config/options.js';
import { ConfigError } from '../config/load.js';
import { UsageError } from './args.js';
import { COMMAND_HELP } from './help.js';
import { packageVersion } from '../http/package-files.js';
import { MIGRATE_USAGE, PUBLISH_USAGE, SERVE_USAGE, TAIL_USAGE, TOKEN_USAGE } from './help.js';

const USAGE = `usage:
  ${SERVE_USAGE}
  ${TOKEN_USAGE}
  ${TAIL_USAGE}
  ${PUBLISH_USAGE}
  ${MIGRATE_USAGE}

environment: SWITCHBOARD_PORT, SWITCHBOARD_DATA_DIR (default ./.switchboard), SWITCHBOARD_TOKEN_SECRET,
SWITCHBOARD_API_KEY, SWITCHBOARD_REDIS_URL, SWITCHBOARD_REDIS_CLUSTER (host:port,…) with its _USERNAME, _PASSWORD,
_TLS (1/0) and _CA (a PEM file), SWITCHBOARD_POSTGRES_URL, SWITCHBOARD_ADMIN_PASSWORD, SWITCHBOARD_LOG_LEVEL

switchboard COMMAND --help   what a command does and its options
switchboard --version        the version`;

/** Loaded on use: help and usage errors never load the server. */
const COMMANDS: Record<string, () => Promise<(args: string[]) => Promise<void>>> = {
  serve: async () => (await import('./serve.js')).serveCommand,
  token: async () => (await import('./token.js')).tokenCommand,
  tail: async () => (await import('./tail.js')).tailCommand,
  publish: async () => (await import('./publish.js')).publishCommand,
  migrate: async () => (await import('./migrate.js')).migrateCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(`switchboard ${packageVersion()}\n`);
    return 0;
  }
  const help = (n: string | undefined): boolean => n === '--help' || n === '-h';
  if (name === undefined || help(name) || name === 'help') {
    // `switchboard help serve` is `switchboard serve --help`.
    const topic = name === 'help' ? rest[0] : undefined;
    process.stdout.write(`${(topic && COMMAND_HELP[topic]) || USAGE}\n`);
    return name === undefined ? 2 : 0;
  }
  if (rest.some(help) && COMMAND_HELP[name]) {
    process.stdout.write(`${COMMAND_HELP[name]}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command: ${name} (serve, token, tail, publish, migrate)`);
  await (await command())(rest);
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
