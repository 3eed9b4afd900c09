import { ident, type PgPool, type Queryable } from './pool.js';

/** Lock key space (first int of the two-int advisory locks) Switchboard uses. */
export const LOCK_SPACE = {
  /** Held by migrations while they run, so nodes starting together do not race. */
  migrate: 0x5b0a_0001,
  /** Taken per channel by an application transaction while it seals its outbox rows (commit order). */
  seal: 0x5b0a_0002,
  /** Taken per channel by a consumer for the length of one claim (per-channel order across nodes). */
  claim: 0x5b0a_0003,
} as const;

export interface MigrationTarget {
  schema: string;
  /** Outbox table name. */
  table: string;
}

interface Migration {
  /** Unique per schema: recorded in `<schema>.switchboard_migrations`. */
  name: string;
  sql: string;
  /** A relation it creates: when that is missing (dropped since), the migration runs again. */
  creates?: string;
}

/** The NOTIFY channel of an outbox table (one per schema and table). */
export function outboxNotifyChannel(t: MigrationTarget): string {
  return `${t.schema}.${t.table}`;
}

/**
 * Every migration, in order. Each is idempotent (IF NOT EXISTS / OR REPLACE) and recorded by
 * name, so running them again (every start, `switchboard migrate`) changes nothing.
 * docs/postgres.md shows the resulting SQL.
 */
export function migrations(t: MigrationTarget): Migration[] {
  const s = ident(t.schema);
  const table = `${s}.${ident(t.table)}`;
  const seq = `${s}.${ident(`${t.table}_commit_seq`)}`;
  const sealFn = `${s}.${ident(`${t.table}_seal`)}`;
  const key = `hashtext(coalesce(channel, '#' || notify_user))`;
  return [
    {
      name: 'store-1',
      sql: `
        CREATE TABLE IF NOT EXISTS ${s}.switchboard_reads (
          channel text NOT NULL,
          user_id text NOT NULL,
          epoch text NOT NULL,
          "offset" bigint NOT NULL,
          written_at bigint NOT NULL,
          PRIMARY KEY (channel, user_id)
        );
        CREATE INDEX IF NOT EXISTS switchboard_reads_written ON ${s}.switchboard_reads (written_at);
        CREATE TABLE IF NOT EXISTS ${s}.switchboard_statuses (
          user_id text PRIMARY KEY,
          status text NOT NULL,
          last_seen bigint NOT NULL,
          written_at bigint NOT NULL
        );
        CREATE INDEX IF NOT EXISTS switchboard_statuses_written ON ${s}.switchboard_statuses (written_at);
        CREATE TABLE IF NOT EXISTS ${s}.switchboard_streams (
          channel text PRIMARY KEY,
          epoch text NOT NULL,
          top bigint NOT NULL,
          meta_expires_at bigint NOT NULL
        );
        CREATE TABLE IF NOT EXISTS ${s}.switchboard_pubs (
          channel text NOT NULL,
          "offset" bigint NOT NULL,
          data text NOT NULL,
          info jsonb,
          expires_at bigint NOT NULL,
          PRIMARY KEY (channel, "offset")
        );
        CREATE INDEX IF NOT EXISTS switchboard_pubs_expiry ON ${s}.switchboard_pubs (expires_at);
        CREATE TABLE IF NOT EXISTS ${s}.switchboard_idempotency (
          channel text NOT NULL,
          key text NOT NULL,
          epoch text NOT NULL,
          "offset" bigint NOT NULL,
          expires_at bigint NOT NULL,
          PRIMARY KEY (channel, key)
        );
        CREATE INDEX IF NOT EXISTS switchboard_idempotency_expiry ON ${s}.switchboard_idempotency (expires_at);`,
    },
    {
      name: 'history-1',
      // One round trip per publication of a durable channel (see PgHistory.append).
      sql: `
        CREATE OR REPLACE FUNCTION ${s}.switchboard_history_append(
          p_channel text, p_data text, p_info jsonb, p_size bigint, p_ttl bigint, p_meta_ttl bigint,
          p_key text, p_key_ttl bigint, p_now bigint, p_epoch text, p_notify text, p_inline boolean
        ) RETURNS TABLE (epoch text, "offset" bigint, duplicate boolean) LANGUAGE plpgsql AS $fn$
        DECLARE
          st record;
          ep text;
          tp bigint;
          earlier record;
        BEGIN
          INSERT INTO ${s}.switchboard_streams AS x (channel, epoch, top, meta_expires_at)
            VALUES (p_channel, p_epoch, 0, p_now + p_meta_ttl) ON CONFLICT (channel) DO NOTHING;
          SELECT x.epoch, x.top, x.meta_expires_at INTO st FROM ${s}.switchboard_streams x WHERE x.channel = p_channel FOR UPDATE;
          ep := st.epoch;
          tp := st.top;
          IF st.meta_expires_at <= p_now THEN
            -- A forgotten stream: a new epoch, so no old position is mistaken for one in it.
            ep := p_epoch;
            tp := 0;
            DELETE FROM ${s}.switchboard_pubs p WHERE p.channel = p_channel;
            DELETE FROM ${s}.switchboard_idempotency i WHERE i.channel = p_channel;
          END IF;
          IF p_key IS NOT NULL THEN
            SELECT i.epoch, i."offset" INTO earlier FROM ${s}.switchboard_idempotency i
             WHERE i.channel = p_channel AND i.key = p_key AND i.expires_at > p_now;
            IF FOUND THEN
              RETURN QUERY SELECT earlier.epoch, earlier."offset", true;
              RETURN;
            END IF;
          END IF;
          tp := tp + 1;
          INSERT INTO ${s}.switchboard_pubs (channel, "offset", data, info, expires_at) VALUES (p_channel, tp, p_data, p_info, p_now + p_ttl);
          IF tp > p_size THEN
            DELETE FROM ${s}.switchboard_pubs p WHERE p.channel = p_channel AND p."offset" <= tp - p_size;
          END IF;
          UPDATE ${s}.switchboard_streams x SET epoch = ep, top = tp, meta_expires_at = p_now + p_meta_ttl WHERE x.channel = p_channel;
          IF p_key IS NOT NULL THEN
            INSERT INTO ${s}.switchboard_idempotency AS i (channel, key, epoch, "offset", expires_at)
              VALUES (p_channel, p_key, ep, tp, p_now + p_key_ttl)
              ON CONFLICT (channel, key) DO UPDATE SET epoch = excluded.epoch, "offset" = excluded."offset", expires_at = excluded.expires_at;
          END IF;
          PERFORM pg_notify(p_notify, json_build_object('c', p_channel, 'o', tp, 'e', ep,
            'd', CASE WHEN p_inline THEN p_data END, 'i', p_info)::text);
          RETURN QUERY SELECT ep, tp, false;
        END
        $fn$;`,
    },
    {
      name: `outbox-1:${t.table}`,
      creates: table,
      sql: `
        CREATE SEQUENCE IF NOT EXISTS ${seq};
        CREATE TABLE IF NOT EXISTS ${table} (
          id bigserial PRIMARY KEY,
          channel text,
          notify_user text,
          data jsonb NOT NULL,
          idempotency_key text,
          created_at timestamptz NOT NULL DEFAULT now(),
          commit_seq bigint,
          failed_at timestamptz,
          error text,
          CONSTRAINT ${ident(`${t.table}_one_target`)} CHECK ((channel IS NULL) <> (notify_user IS NULL))
        );
        CREATE INDEX IF NOT EXISTS ${ident(`${t.table}_pending`)} ON ${table} (commit_seq) WHERE failed_at IS NULL;
        CREATE INDEX IF NOT EXISTS ${ident(`${t.table}_unsealed`)} ON ${table} (id) WHERE commit_seq IS NULL;

        -- Runs at COMMIT (deferred), once per transaction in effect: locks the transaction's
        -- channels in a fixed order (no deadlock between transactions), numbers its rows from
        -- ${seq} while holding them, and wakes the consumers. Another transaction writing the
        -- same channel waits for those locks, which are released only after this one is visible,
        -- so commit_seq order is commit order per channel.
        CREATE OR REPLACE FUNCTION ${sealFn}() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
          PERFORM 1 FROM ${table} WHERE id = NEW.id AND commit_seq IS NULL;
          IF NOT FOUND THEN RETURN NULL; END IF;
          PERFORM pg_advisory_xact_lock(${LOCK_SPACE.seal}, k)
            FROM (SELECT DISTINCT ${key} AS k FROM ${table} WHERE commit_seq IS NULL ORDER BY 1) keys;
          UPDATE ${table} AS t SET commit_seq = n.seq
            FROM (SELECT id, nextval('${seq}') AS seq
                    FROM (SELECT id FROM ${table} WHERE commit_seq IS NULL ORDER BY id) ordered) n
           WHERE t.id = n.id;
          PERFORM pg_notify('${outboxNotifyChannel(t)}', '');
          RETURN NULL;
        END
        $fn$;
        DROP TRIGGER IF EXISTS ${ident(`${t.table}_seal`)} ON ${table};
        CREATE CONSTRAINT TRIGGER ${ident(`${t.table}_seal`)} AFTER INSERT ON ${table}
          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${sealFn}();

        CREATE OR REPLACE FUNCTION ${s}.switchboard_publish(channel text, data jsonb, idempotency_key text DEFAULT NULL)
          RETURNS bigint LANGUAGE sql AS $fn$
          INSERT INTO ${table} (channel, data, idempotency_key) VALUES ($1, $2, $3) RETURNING id
        $fn$;
        CREATE OR REPLACE FUNCTION ${s}.switchboard_notify(user_id text, data jsonb, idempotency_key text DEFAULT NULL)
          RETURNS bigint LANGUAGE sql AS $fn$
          INSERT INTO ${table} (notify_user, data, idempotency_key) VALUES ($1, $2, $3) RETURNING id
        $fn$;`,
    },
  ];
}

/**
 * Brings the schema up to date: creates it if missing, then applies each migration not yet
 * recorded, all in one transaction under an advisory lock. Resolves with the names applied now.
 */
export async function migrate(pool: PgPool, t: MigrationTarget): Promise<string[]> {
  const s = ident(t.schema);
  return pool.transaction(async (tx: Queryable) => {
    await tx.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_SPACE.migrate, t.schema]);
    await tx.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await tx.query(`CREATE TABLE IF NOT EXISTS ${s}.switchboard_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await tx.query<{ name: string }>(`SELECT name FROM ${s}.switchboard_migrations`)).rows.map((r) => r.name));
    const applied: string[] = [];
    for (const m of migrations(t)) {
      const missing = m.creates !== undefined && (await tx.query(`SELECT to_regclass($1) IS NULL AS missing`, [m.creates])).rows[0]?.missing === true;
      if (done.has(m.name) && !missing) continue;
      await tx.query(m.sql);
      await tx.query(`INSERT INTO ${s}.switchboard_migrations (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET applied_at = now()`, [m.name]);
      applied.push(m.name);
    }
    return applied;
  }, { ungated: true });
}
