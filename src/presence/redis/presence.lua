-- Channel presence and online users in Redis, with expiry for entries a dead node left behind.
-- A "set" here is three keys: entries (hash member -> JSON), expiry (zset member -> expiry ms)
-- and users (hash user -> count of members, expired ones included until they are removed).
-- KEYS[1] entries  KEYS[2] expiry  KEYS[3] users
-- ARGV[1] op: add | remove | get | refresh | sweep
-- ARGV[2] now ms   ARGV[3] key ttl ms
-- ARGV[4] grace ms: any op first drops entries expired for longer than this. Online sets use 0;
--         channel presence uses the TTL, so that `sweep` (which reports who left) gets them first,
--         and `get` hides entries that expired but are not swept yet.
-- add:     ARGV[5] member  ARGV[6] user  ARGV[7] entry JSON  ARGV[8] expiry ms  -> 1 if the user is new
-- remove:  ARGV[5] member  ARGV[6] user                                          -> 1 if the user left
-- get:                                                           -> flat member, JSON of live entries
-- refresh: ARGV[5] expiry ms, ARGV[6..] triples member, user, entry JSON
--          -> the users that had no entry left and are back (each once)
--          (sets the expiry of each, and adds back the ones that are gone: flush, restart, sweep)
-- sweep:   ARGV[5] most entries to remove
--          -> {next expiry ms or -1 when empty, JSON1, left1, JSON2, left2, ...}; leftN is 1 when
--             that removal took the user's last entry
local entries, expiry, users = KEYS[1], KEYS[2], KEYS[3]
local op, now, keyTtl, grace = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])

local function drop(member, user)
  if redis.call('HDEL', entries, member) == 1 then
    redis.call('ZREM', expiry, member)
    if redis.call('HINCRBY', users, user, -1) <= 0 then
      redis.call('HDEL', users, user)
      return 1
    end
  end
  return 0
end

local function userOf(json)
  local ok, entry = pcall(cjson.decode, json)
  if ok and type(entry) == 'table' and type(entry.user) == 'string' then return entry.user end
  return ''
end

local function expired(before, limit)
  if limit then return redis.call('ZRANGEBYSCORE', expiry, '-inf', before, 'LIMIT', 0, limit) end
  return redis.call('ZRANGEBYSCORE', expiry, '-inf', before)
end

if op == 'sweep' then
  local out = {-1}
  for _, member in ipairs(expired(now, tonumber(ARGV[5]))) do
    local json = redis.call('HGET', entries, member)
    if json then
      out[#out + 1] = json
      out[#out + 1] = drop(member, userOf(json))
    else
      redis.call('ZREM', expiry, member)
    end
  end
  local head = redis.call('ZRANGE', expiry, 0, 0, 'WITHSCORES')
  if head[2] then out[1] = tonumber(head[2]) end
  return out
end

-- Entries of dead nodes long past their expiry (a backstop when nobody sweeps).
for _, member in ipairs(expired(now - grace, 1000)) do
  local json = redis.call('HGET', entries, member)
  if json then drop(member, userOf(json)) else redis.call('ZREM', expiry, member) end
end

if op == 'get' then
  local live = redis.call('ZRANGEBYSCORE', expiry, '(' .. ARGV[2], '+inf')
  local out = {}
  for from = 1, #live, 1000 do
    local batch = {}
    for i = from, math.min(from + 999, #live) do batch[#batch + 1] = live[i] end
    local values = redis.call('HMGET', entries, unpack(batch))
    for i, member in ipairs(batch) do
      if values[i] then
        out[#out + 1] = member
        out[#out + 1] = values[i]
      end
    end
  end
  return out
end

local result = 0
local function put(member, user, json, at)
  local isNew = redis.call('HSET', entries, member, json)
  redis.call('ZADD', expiry, at, member)
  if isNew == 1 and redis.call('HINCRBY', users, user, 1) == 1 then return 1 end
  return 0
end
if op == 'add' then
  result = put(ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]))
elseif op == 'remove' then
  result = drop(ARGV[5], ARGV[6])
elseif op == 'refresh' then
  local at = tonumber(ARGV[5])
  result = {}
  for i = 6, #ARGV - 2, 3 do
    if put(ARGV[i], ARGV[i + 1], ARGV[i + 2], at) == 1 then result[#result + 1] = ARGV[i + 1] end
  end
end
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, keyTtl) end
return result
