import type { ClientInfo, HistoryOptions, HistoryQuery, HistoryResult, Publication, StreamPosition } from '../stream/types.js';
import { newEpoch } from '../stream/epoch.js';
import { ident, type Queryable } from './pool.js';

export interface AppendResult extends StreamPosition {
  duplicate: boolean;
}

/**
 * Channel history in PostgreSQL (the channels kept there, `notifications:*` when the store is
 * PostgreSQL): the same rules as the other history logs (offsets +1 per publication from 1 in a
 * new epoch; a stream forgotten after `metaTtlMs` starts a new epoch), with the idempotency key
 * checked and recorded in the same transaction as the append. Appends to one channel are
 * serialized by the lock on its stream row, held until commit.
 */
export class PgHistory {
  private readonly s: string;

  constructor(schema: string) {
    this.s = ident(schema);
  }

  /** Inside a transaction: the duplicate's position, or the new publication's. */
  async append(
    tx: Queryable,
    channel: string,
    data: string,
    info: ClientInfo | undefined,
    options: HistoryOptions,
    idempotency: { key: string; ttlMs: number } | undefined,
    now: number,
  ): Promise<AppendResult> {
    const s = this.s;
    await tx.query(
      `INSERT INTO ${s}.switchboard_streams (channel, epoch, top, meta_expires_at) VALUES ($1, $2, 0, $3) ON CONFLICT (channel) DO NOTHING`,
      [channel, newEpoch(), now + options.metaTtlMs],
    );
    const stream = (
      await tx.query<{ epoch: string; top: string; meta_expires_at: string }>(
        `SELECT epoch, top, meta_expires_at FROM ${s}.switchboard_streams WHERE channel = $1 FOR UPDATE`,
        [channel],
      )
    ).rows[0]!;
    let epoch = stream.epoch;
    let top = Number(stream.top);
    if (Number(stream.meta_expires_at) <= now) {
      // Forgotten stream: a new epoch, so no old position is mistaken for one in it.
      epoch = newEpoch();
      top = 0;
      await tx.query(`DELETE FROM ${s}.switchboard_pubs WHERE channel = $1`, [channel]);
      await tx.query(`DELETE FROM ${s}.switchboard_idempotency WHERE channel = $1`, [channel]);
    }
    if (idempotency) {
      const earlier = (
        await tx.query<{ epoch: string; offset: string }>(
          `SELECT epoch, "offset" FROM ${s}.switchboard_idempotency WHERE channel = $1 AND key = $2 AND expires_at > $3`,
          [channel, idempotency.key, now],
        )
      ).rows[0];
      if (earlier) return { offset: Number(earlier.offset), epoch: earlier.epoch, duplicate: true };
    }
    const offset = top + 1;
    await tx.query(`INSERT INTO ${s}.switchboard_pubs (channel, "offset", data, info, expires_at) VALUES ($1, $2, $3, $4, $5)`, [
      channel,
      offset,
      data,
      info ? JSON.stringify(info) : null,
      now + options.ttlMs,
    ]);
    if (offset > options.size) {
      await tx.query(`DELETE FROM ${s}.switchboard_pubs WHERE channel = $1 AND "offset" <= $2`, [channel, offset - options.size]);
    }
    await tx.query(`UPDATE ${s}.switchboard_streams SET epoch = $2, top = $3, meta_expires_at = $4 WHERE channel = $1`, [
      channel,
      epoch,
      offset,
      now + options.metaTtlMs,
    ]);
    if (idempotency) {
      await tx.query(
        `INSERT INTO ${s}.switchboard_idempotency (channel, key, epoch, "offset", expires_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (channel, key) DO UPDATE SET epoch = excluded.epoch, "offset" = excluded."offset", expires_at = excluded.expires_at`,
        [channel, idempotency.key, epoch, offset, now + idempotency.ttlMs],
      );
    }
    return { offset, epoch, duplicate: false };
  }

  async read(db: Queryable, channel: string, query: HistoryQuery, options: HistoryOptions, now: number): Promise<HistoryResult> {
    const s = this.s;
    const stream = (
      await db.query<{ epoch: string; top: string; earliest: string | null }>(
        `SELECT st.epoch, st.top,
                (SELECT min("offset") FROM ${s}.switchboard_pubs p WHERE p.channel = st.channel AND p.expires_at > $2) AS earliest
           FROM ${s}.switchboard_streams st WHERE st.channel = $1 AND st.meta_expires_at > $2`,
        [channel, now],
      )
    ).rows[0];
    if (!stream) return { position: { offset: 0, epoch: '' }, publications: [], earliest: 1 };
    const top = Number(stream.top);
    const position = { offset: top, epoch: stream.epoch };
    const earliest = Math.max(stream.earliest === null ? top + 1 : Number(stream.earliest), top - options.size + 1, 1);
    if (query.sinceOffset === undefined || query.limit <= 0 || top === 0) return { position, publications: [], earliest };
    const after = Math.max(query.sinceOffset, earliest - 1);
    const { rows } = await db.query<{ offset: string; data: string; info: ClientInfo | null }>(
      `SELECT "offset", data, info FROM ${s}.switchboard_pubs
        WHERE channel = $1 AND "offset" > $2 AND "offset" <= $3 AND expires_at > $4 ORDER BY "offset" LIMIT $5`,
      [channel, after, top, now, query.limit],
    );
    const publications: Publication[] = [];
    let bytes = 0;
    for (const row of rows) {
      bytes += Buffer.byteLength(row.data);
      if (query.maxBytes !== undefined && publications.length > 0 && bytes > query.maxBytes) break;
      publications.push(toPublication(row));
    }
    return { position, publications, earliest };
  }

  /** One publication by offset (a live delivery whose NOTIFY was too large to carry the data). */
  async one(db: Queryable, channel: string, offset: number): Promise<Publication | undefined> {
    const { rows } = await db.query<{ offset: string; data: string; info: ClientInfo | null }>(
      `SELECT "offset", data, info FROM ${this.s}.switchboard_pubs WHERE channel = $1 AND "offset" = $2`,
      [channel, offset],
    );
    return rows[0] ? toPublication(rows[0]) : undefined;
  }

  /** Starts a new epoch for `channel` if it is still on `epoch` (a node saw its stream go back). */
  async restartEpoch(tx: Queryable, channel: string, epoch: string): Promise<void> {
    const changed = await tx.query(`UPDATE ${this.s}.switchboard_streams SET epoch = $3, top = 0 WHERE channel = $1 AND epoch = $2`, [
      channel,
      epoch,
      newEpoch(),
    ]);
    if ((changed.rowCount ?? 0) > 0) await tx.query(`DELETE FROM ${this.s}.switchboard_pubs WHERE channel = $1`, [channel]);
  }

  /** Deletes expired publications, streams and idempotency keys. */
  async sweep(db: Queryable, now: number): Promise<void> {
    await db.query(`DELETE FROM ${this.s}.switchboard_pubs WHERE expires_at <= $1`, [now]);
    await db.query(`DELETE FROM ${this.s}.switchboard_streams WHERE meta_expires_at <= $1`, [now]);
    await db.query(`DELETE FROM ${this.s}.switchboard_idempotency WHERE expires_at <= $1`, [now]);
  }
}

function toPublication(row: { offset: string; data: string; info: ClientInfo | null }): Publication {
  return row.info === null ? { offset: Number(row.offset), data: row.data } : { offset: Number(row.offset), data: row.data, info: row.info };
}
