import { pino } from 'pino';
import { applyEnv, readConfigFile } from '../config/load.js';
import { resolveOptions, type HubOptionsInput } from '../config/options.js';
import { migrate } from '../postgres/migrations.js';
import { PgPool } from '../postgres/pool.js';
import { parse, UsageError } from './args.js';


/**
 * Brings the PostgreSQL schema up to date (the outbox table and functions, the store tables),
 * as every start does, and says what it applied. The config file, then SWITCHBOARD_* variables,
 * then flags.
 */
export async function migrateCommand(args: string[]): Promise<void> {
  const { values } = parse(
    args,
    { config: { type: 'string' }, postgres: { type: 'string' }, schema: { type: 'string' }, table: { type: 'string' } },
    0,
  );
  const config: HubOptionsInput = applyEnv(values.config ? readConfigFile(values.config) : {});
  const pgInput = { ...config.postgres };
  if (values.postgres) pgInput.url = values.postgres;
  if (values.schema) pgInput.schema = values.schema;
  if (values.table) pgInput.outbox = { ...pgInput.outbox, table: values.table };
  // Only the postgres options matter here: validated alone, with the same messages.
  const options = resolveOptions({ auth: { allowAnonymous: true }, postgres: pgInput });
  const pg = options.postgres;
  if (pg.url === null) throw new UsageError('migrate needs a PostgreSQL URL: --postgres URL, SWITCHBOARD_POSTGRES_URL or postgres.url');
  const logger = pino({ name: 'switchboard', level: process.env.SWITCHBOARD_LOG_LEVEL ?? 'warn' }, pino.destination(2));
  const pool = new PgPool({ url: pg.url, queryTimeoutMs: Math.max(pg.queryTimeoutMs, 60_000), connectTimeoutMs: pg.connectTimeoutMs, size: 1, logger });
  try {
    const applied = await migrate(pool, { schema: pg.schema, table: pg.outbox.table });
    process.stdout.write(
      applied.length > 0
        ? `applied ${applied.join(', ')} in schema ${pg.schema}\n`
        : `schema ${pg.schema} is up to date (outbox table ${pg.outbox.table})\n`,
    );
  } finally {
    await pool.close();
  }
}
