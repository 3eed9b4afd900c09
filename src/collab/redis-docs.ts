import { runRedis, type RedisClient } from '../redis/connection.js';
import { sizeOf, type DocStore, type StoredDocument } from './doc-store.js';

/** Appends one update: RPUSH to the log; the sequence is the compacted base plus the log length. */
const APPEND_LUA = `
local n = redis.call('RPUSH', KEYS[1], ARGV[1])
local b = tonumber(redis.call('HGET', KEYS[2], 'base') or '0')
return b + n`;

/** Reads [base, snapshot or false, log entries from index ARGV[1]] in one step. */
const READ_LUA = `
local b = tonumber(redis.call('HGET', KEYS[2], 'base') or '0')
local from = tonumber(ARGV[1]) - b
local snap = false
if from < 0 then
  from = 0
  snap = redis.call('HGET', KEYS[2], 'snapshot')
end
return {b, snap, redis.call('LRANGE', KEYS[1], from, -1), redis.call('LLEN', KEYS[1])}`;

/** Replaces the first ARGV[3] log entries by the snapshot ARGV[2], only if the base is still ARGV[1]. */
const COMPACT_LUA = `
local b = tonumber(redis.call('HGET', KEYS[2], 'base') or '0')
if b ~= tonumber(ARGV[1]) then return 0 end
local k = tonumber(ARGV[3])
redis.call('LTRIM', KEYS[1], k, -1)
redis.call('HSET', KEYS[2], 'base', b + k, 'snapshot', ARGV[2])
return 1`;

/**
 * Moves a document stored by earlier versions under untagged keys (KEYS[3], KEYS[4]) to its
 * tagged keys (KEYS[1], KEYS[2]), unless the tagged ones exist already. One Redis only: the old
 * keys are in other slots.
 */
const ADOPT_LEGACY_LUA = `
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
local moved = 0
for i = 1, 2 do
  if redis.call('EXISTS', KEYS[i + 2]) == 1 then
    redis.call('RENAME', KEYS[i + 2], KEYS[i])
    moved = 1
  end
end
return moved`;

/** Names checked for untagged keys, per process; cleared when it grows past this (a check again is harmless). */
const ADOPTED_MAX = 10_000;

const HEAD_LUA = `
return tonumber(redis.call('HGET', KEYS[2], 'base') or '0') + redis.call('LLEN', KEYS[1])`;

type Scripts = {
  sbDocAppend(log: string, meta: string, update: Buffer): Promise<number>;
  sbDocRead(log: string, meta: string, from: number): Promise<[number, Buffer | null, Buffer[], number]>;
  sbDocCompact(log: string, meta: string, base: number, snapshot: Buffer, count: number): Promise<number>;
  sbDocHead(log: string, meta: string): Promise<number>;
  sbDocAdoptLegacy(log: string, meta: string, oldLog: string, oldMeta: string): Promise<number>;
};

/**
 * Documents in Redis, shared by every node: `PREFIX:doc:log:{NAME}` (a list of updates) and
 * `PREFIX:doc:meta:{NAME}` (a hash: the snapshot and `base`, the sequence it covers). Both carry
 * the hash tag `{NAME}`, so on a Redis Cluster each script (which touches both) runs on the one
 * shard that owns the document; on one Redis the braces are just part of the name, and a document
 * an earlier version stored under `PREFIX:doc:log:NAME` / `PREFIX:doc:meta:NAME` is moved to the
 * tagged keys the first time this process touches it. Each update
 * is in Redis before the node applies or forwards it; durability across a Redis restart is that
 * of the Redis behind it (run it with AOF).
 */
export class RedisDocStore implements DocStore {
  private readonly run: Scripts;
  /** Documents whose untagged keys (earlier versions) were looked for already (one Redis only). */
  private readonly adopted = new Set<string>();

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly timeoutMs: number,
  ) {
    redis.defineCommand('sbDocAppend', { numberOfKeys: 2, lua: APPEND_LUA });
    redis.defineCommand('sbDocRead', { numberOfKeys: 2, lua: READ_LUA });
    redis.defineCommand('sbDocCompact', { numberOfKeys: 2, lua: COMPACT_LUA });
    redis.defineCommand('sbDocHead', { numberOfKeys: 2, lua: HEAD_LUA });
    if (!redis.isCluster) redis.defineCommand('sbDocAdoptLegacy', { numberOfKeys: 4, lua: ADOPT_LEGACY_LUA });
    this.run = redis as unknown as Scripts;
  }

  private keys(name: string): [string, string] {
    return [`${this.prefix}:doc:log:{${name}}`, `${this.prefix}:doc:meta:{${name}}`];
  }

  /** The document's tagged keys, after moving its untagged ones there (once per name, one Redis only). */
  private async keysOf(name: string): Promise<[string, string]> {
    const keys = this.keys(name);
    if (this.redis.isCluster || this.adopted.has(name)) return keys;
    await this.call(() => this.run.sbDocAdoptLegacy(...keys, `${this.prefix}:doc:log:${name}`, `${this.prefix}:doc:meta:${name}`));
    if (this.adopted.size >= ADOPTED_MAX) this.adopted.clear();
    this.adopted.add(name);
    return keys;
  }

  private call<T>(fn: () => Promise<T>): Promise<T> {
    return runRedis(this.redis, this.timeoutMs, 'document store', fn);
  }

  load(name: string): Promise<StoredDocument> {
    return this.since(name, -1);
  }

  async append(name: string, update: Uint8Array): Promise<number> {
    const [log, meta] = await this.keysOf(name);
    return this.call(() => this.run.sbDocAppend(log, meta, Buffer.from(update.buffer, update.byteOffset, update.byteLength))).then(Number);
  }

  async since(name: string, seq: number): Promise<StoredDocument> {
    const [log, meta] = await this.keysOf(name);
    // ioredis returns Buffers for the *Buffer variant of a script command.
    const run = this.redis as unknown as { sbDocReadBuffer: Scripts['sbDocRead'] };
    const [base, snap, entries, len] = await this.call(() => run.sbDocReadBuffer(log, meta, seq));
    const updates: Uint8Array[] = [];
    if (snap) updates.push(new Uint8Array(snap));
    for (const e of entries) updates.push(new Uint8Array(e));
    return { updates, seq: Number(base) + Number(len), bytes: sizeOf(updates) };
  }

  async head(name: string): Promise<number> {
    const [log, meta] = await this.keysOf(name);
    return this.call(() => this.run.sbDocHead(log, meta)).then(Number);
  }

  readonly asyncMerge = true;

  async compact(name: string, merge: (updates: Uint8Array[]) => Uint8Array | Promise<Uint8Array>): Promise<Uint8Array | undefined> {
    const [log, meta] = await this.keysOf(name);
    const run = this.redis as unknown as { sbDocReadBuffer: Scripts['sbDocRead'] };
    for (let attempt = 0; attempt < 3; attempt++) {
      const [base, snap, entries] = await this.call(() => run.sbDocReadBuffer(log, meta, -1));
      if (entries.length === 0) return undefined;
      const parts = [...(snap ? [new Uint8Array(snap)] : []), ...entries.map((e) => new Uint8Array(e))];
      const snapshot = await merge(parts);
      const done = await this.call(() => this.run.sbDocCompact(log, meta, Number(base), Buffer.from(snapshot), entries.length));
      if (Number(done) === 1) return snapshot;
      // Another node compacted meanwhile: read again.
    }
    return undefined;
  }

  close(): Promise<void> {
    // The connection belongs to Storage, which closes it.
    return Promise.resolve();
  }
}
