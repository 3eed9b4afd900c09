import { randomUUID } from 'node:crypto';
import type { WebhookEventType } from '../config/options.js';
import { runRedis, type RedisClient } from '../redis/connection.js';
import type { FailedWebhookEvent, MemberKind, WebhookEvent, WebhookQueueStatus, WebhookStore } from './events.js';

/**
 * Every step is one script, so a state change and the events it causes are written together and
 * each departure is claimed by exactly one node. Keys share the `{wh}` hash tag.
 *  P:m:<kind>:<name>  hash node → 1 (the nodes holding a membership)
 *  P:n:<node>:<kind>  set of names (what a node holds, to end it when the node's lease runs out)
 *  P:on:<kind>        set: online users / occupied channels (those an event announced)
 *  P:departing        zset user → when their last connection closed
 *  P:lease:<node>, P:nodes, P:lock (the delivery lease), P:queue (list), P:failed (list of ids),
 *  P:failed:ev / P:failed:err (hashes id → event JSON / {error, failedAt} JSON), P:epoch, P:seq.
 */
const SCRIPT = `
local p = KEYS[1]
local op = ARGV[1]
local now = tonumber(ARGV[2])
local enabled = cjson.decode(ARGV[3])
local function emit(t, data)
  if not enabled[t] then return end
  local e = redis.call('GET', p .. ':epoch')
  if not e then e = ARGV[4]; redis.call('SET', p .. ':epoch', e) end
  local id = 'evt_' .. e .. '_' .. redis.call('INCR', p .. ':seq')
  redis.call('RPUSH', p .. ':queue', cjson.encode({id = id, type = t, timestamp = now, data = data}))
end
local function emptied(kind, name)
  if redis.call('HLEN', p .. ':m:' .. kind .. ':' .. name) > 0 then return end
  if kind == 'c' then
    if redis.call('SREM', p .. ':on:c', name) == 1 then emit('channel.vacated', {channel = name}) end
  elseif redis.call('SISMEMBER', p .. ':on:u', name) == 1 then
    if not redis.call('ZSCORE', p .. ':departing', name) then redis.call('ZADD', p .. ':departing', now, name) end
  end
end
if op == 'add' then
  local kind, name, node = ARGV[5], ARGV[6], ARGV[7]
  redis.call('HSET', p .. ':m:' .. kind .. ':' .. name, node, 1)
  redis.call('SADD', p .. ':n:' .. node .. ':' .. kind, name)
  if kind == 'u' then redis.call('ZREM', p .. ':departing', name) end
  if redis.call('SADD', p .. ':on:' .. kind, name) == 1 then
    if kind == 'u' then emit('user.online', {user = name}) else emit('channel.occupied', {channel = name}) end
  end
  return 1
elseif op == 'remove' then
  local kind, name, node = ARGV[5], ARGV[6], ARGV[7]
  redis.call('HDEL', p .. ':m:' .. kind .. ':' .. name, node)
  redis.call('SREM', p .. ':n:' .. node .. ':' .. kind, name)
  emptied(kind, name)
  return 1
elseif op == 'sweep' then
  local node, lease, grace = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
  redis.call('SET', p .. ':lease:' .. node, 1, 'PX', lease)
  redis.call('SADD', p .. ':nodes', node)
  for _, n in ipairs(redis.call('SMEMBERS', p .. ':nodes')) do
    if n ~= node and redis.call('EXISTS', p .. ':lease:' .. n) == 0 then
      for _, kind in ipairs({'u', 'c'}) do
        local held = p .. ':n:' .. n .. ':' .. kind
        for _, name in ipairs(redis.call('SMEMBERS', held)) do
          redis.call('HDEL', p .. ':m:' .. kind .. ':' .. name, n)
          emptied(kind, name)
        end
        redis.call('DEL', held)
      end
      redis.call('SREM', p .. ':nodes', n)
    end
  end
  for _, user in ipairs(redis.call('ZRANGEBYSCORE', p .. ':departing', '-inf', now - grace, 'LIMIT', 0, 500)) do
    redis.call('ZREM', p .. ':departing', user)
    if redis.call('HLEN', p .. ':m:u:' .. user) == 0 and redis.call('SREM', p .. ':on:u', user) == 1 then
      emit('user.offline', {user = user})
    end
  end
  return 1
elseif op == 'head' then
  local node, lease, max = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
  local holder = redis.call('GET', p .. ':lock')
  if holder and holder ~= node then return false end
  redis.call('SET', p .. ':lock', node, 'PX', lease)
  return redis.call('LRANGE', p .. ':queue', 0, max - 1)
elseif op == 'ack' or op == 'aside' then
  local node, count = ARGV[5], tonumber(ARGV[6])
  if redis.call('GET', p .. ':lock') ~= node then return 0 end
  if op == 'aside' then
    for _, raw in ipairs(redis.call('LRANGE', p .. ':queue', 0, count - 1)) do
      local id = cjson.decode(raw).id
      if redis.call('HSETNX', p .. ':failed:ev', id, raw) == 1 then redis.call('RPUSH', p .. ':failed', id) end
      redis.call('HSET', p .. ':failed:err', id, ARGV[7])
    end
  end
  redis.call('LTRIM', p .. ':queue', count, -1)
  return 1
elseif op == 'retry' then
  local all = ARGV[5] == '*'
  local wanted = {}
  for i = 6, #ARGV do wanted[ARGV[i]] = true end
  local moved = 0
  for _, id in ipairs(redis.call('LRANGE', p .. ':failed', 0, -1)) do
    if all or wanted[id] then
      local raw = redis.call('HGET', p .. ':failed:ev', id)
      if raw then redis.call('RPUSH', p .. ':queue', raw); moved = moved + 1 end
      redis.call('LREM', p .. ':failed', 1, id)
      redis.call('HDEL', p .. ':failed:ev', id)
      redis.call('HDEL', p .. ':failed:err', id)
    end
  end
  return moved
end
return redis.error_reply('unknown op')
`;

type Script = (key: string, ...args: Array<string | number>) => Promise<unknown>;

/** The webhook store shared by every node through Redis (docs/backend.md, "Several nodes"). */
export class RedisWebhookStore implements WebhookStore {
  private readonly key: string;
  private readonly flags: string;
  private readonly epoch = randomUUID().slice(0, 8);

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly timeoutMs: number,
    enabled: ReadonlySet<WebhookEventType>,
  ) {
    this.key = `${prefix}:{wh}`;
    this.flags = JSON.stringify(Object.fromEntries([...enabled].map((t) => [t, true])));
    if (!(redis as unknown as Record<string, unknown>).sbWebhooks) redis.defineCommand('sbWebhooks', { numberOfKeys: 1, lua: SCRIPT });
  }

  async add(kind: MemberKind, name: string, node: string, now: number): Promise<void> {
    await this.run('add', now, kind, name, node);
  }

  async remove(kind: MemberKind, name: string, node: string, now: number): Promise<void> {
    await this.run('remove', now, kind, name, node);
  }

  async sweep(node: string, now: number, leaseMs: number, graceMs: number): Promise<void> {
    await this.run('sweep', now, node, leaseMs, graceMs);
  }

  async enqueue(events: readonly WebhookEvent[]): Promise<void> {
    if (events.length === 0) return;
    await runRedis(this.redis, this.timeoutMs, 'webhook queue', () => this.redis.rpush(`${this.key}:queue`, ...events.map((e) => JSON.stringify(e))));
  }

  async head(node: string, max: number, leaseMs: number): Promise<string[] | undefined> {
    const got = await this.run('head', Date.now(), node, leaseMs, max);
    return Array.isArray(got) ? (got as string[]) : undefined;
  }

  async ack(node: string, count: number): Promise<void> {
    await this.run('ack', Date.now(), node, count);
  }

  async setAside(node: string, count: number, error: string, now: number): Promise<void> {
    await this.run('aside', now, node, count, JSON.stringify({ error, failedAt: now }));
  }

  async failed(limit: number): Promise<FailedWebhookEvent[]> {
    const ids = await runRedis(this.redis, this.timeoutMs, 'webhook queue', () => this.redis.lrange(`${this.key}:failed`, 0, limit - 1));
    if (ids.length === 0) return [];
    const [events, errors] = await runRedis(this.redis, this.timeoutMs, 'webhook queue', () =>
      Promise.all([this.redis.hmget(`${this.key}:failed:ev`, ...ids), this.redis.hmget(`${this.key}:failed:err`, ...ids)]),
    );
    const out: FailedWebhookEvent[] = [];
    ids.forEach((_, i) => {
      const raw = events[i];
      if (!raw) return;
      const why = JSON.parse(errors[i] ?? '{"error":"","failedAt":0}') as { error: string; failedAt: number };
      out.push({ event: JSON.parse(raw) as WebhookEvent, error: why.error, failedAt: why.failedAt });
    });
    return out;
  }

  async retry(ids: readonly string[] | undefined): Promise<number> {
    return Number(await this.run('retry', Date.now(), ids ? '-' : '*', ...(ids ?? [])));
  }

  async status(): Promise<WebhookQueueStatus> {
    const [queued, failed] = await runRedis(this.redis, this.timeoutMs, 'webhook queue', () =>
      Promise.all([this.redis.llen(`${this.key}:queue`), this.redis.llen(`${this.key}:failed`)]),
    );
    return { queued, failed };
  }

  private run(op: string, now: number, ...args: Array<string | number>): Promise<unknown> {
    const script = (this.redis as unknown as { sbWebhooks: Script }).sbWebhooks.bind(this.redis);
    return runRedis(this.redis, this.timeoutMs, 'webhook store', () => script(this.key, op, now, this.flags, this.epoch, ...args));
  }
}
