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

  /**
   * Appends one publication (or finds the duplicate of its idempotency key) and sends the
   * NOTIFY that delivers it, in one statement (one transaction): `switchboard_history_append`.
   * The data rides in the NOTIFY when `inline`; else listeners read it back by offset.
   */
  async append(
    db: Queryable,
    channel: string,
    data: string,
    info: ClientInfo | undefined,
    options: HistoryOptions,
    idempotency: { key: string; ttlMs: number } | undefined,
    now: number,
    notify: { channel: string; inline: boolean },
  ): Promise<AppendResult> {
    const { rows } = await db.query<{ epoch: string; offset: string; duplicate: boolean }>(
      `SELECT epoch, "offset", duplicate FROM ${this.s}.switchboard_history_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
        channel,
        data,
        info ? JSON.stringify(info) : null,
        options.size,
        options.ttlMs,
        options.metaTtlMs,
        idempotency?.key ?? null,
        idempotency?.ttlMs ?? 0,
        now,
        newEpoch(),
        notify.channel,
        notify.inline,
      ],
    );
    const row = rows[0]!;
    return { offset: Number(row.offset), epoch: row.epoch, duplicate: row.duplicate };
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
