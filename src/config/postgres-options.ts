import { z } from 'zod';
import { positiveInt } from './option-primitives.js';

/** A PostgreSQL identifier Switchboard puts into SQL (schema, table): plain lowercase words only. */
const sqlIdentifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lowercase SQL identifier (a-z, 0-9, _; at most 63)');

/** PostgreSQL: the transactional outbox consumer, and the store when `store` is "postgres". */
export const postgresSchema = z
  .object({
    /** postgres:// URL; null: no PostgreSQL (no outbox, no PostgreSQL store). */
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .nullable()
      .default(null),
    /** Schema of every table and function Switchboard creates (tests use one each). */
    schema: sqlIdentifier.default('public'),
    outbox: z
      .object({
        /** Whether this node consumes the outbox table (several nodes may). */
        enabled: z.boolean().default(true),
        /** The table the application inserts into (in `postgres.schema`). */
        table: sqlIdentifier.default('switchboard_outbox'),
        /** Rows claimed per transaction. */
        batchSize: positiveInt.max(10_000).default(100),
        /** Polling fallback: the table is read this often even without a NOTIFY. */
        pollIntervalMs: positiveInt.default(1_000),
      })
      .strict()
      .prefault({}),
    /** The most any one PostgreSQL statement may take (statement_timeout and the client bound); past it: error 114. */
    queryTimeoutMs: positiveInt.min(10).max(600_000).default(5_000),
    /** The most opening a connection may take. */
    connectTimeoutMs: positiveInt.min(10).max(60_000).default(5_000),
    /** Connections in the pool (the outbox listener holds one more). */
    poolSize: positiveInt.max(1_000).default(10),
  })
  .strict();
