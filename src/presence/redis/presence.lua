-- Channel presence and online users in Redis, with expiry for entries a dead node left behind.
-- A "set" here is three keys: entries (hash member -> JSON), expiry (zset member -> expiry ms)
-- and users (hash user -> count of live members).
-- KEYS[1] entries  KEYS[2] expiry  KEYS[3] users
-- ARGV[1] op: add | remove | get | touch
-- ARGV[2] now ms   ARGV[3] key ttl ms
-- add:    ARGV[4] member  ARGV[5] user  ARGV[6] entry JSON  ARGV[7] expiry ms   -> 1 if the user is new
-- remove: ARGV[4] member  ARGV[5] user                                           -> 1 if the user left
-- get:                                                                           -> flat HGETALL of entries
-- touch:  ARGV[4] expiry ms, ARGV[5..] members                                   -> 0
local entries, expiry, users = KEYS[1], KEYS[2], KEYS[3]
local op, now, keyTtl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

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

-- Entries of dead nodes: past their expiry.
for _, member in ipairs(redis.call('ZRANGEBYSCORE', expiry, '-inf', now)) do
  local json = redis.call('HGET', entries, member)
  if json then drop(member, cjson.decode(json).user) else redis.call('ZREM', expiry, member) end
end

local result = 0
if op == 'add' then
  local member, user = ARGV[4], ARGV[5]
  local isNew = redis.call('HSET', entries, member, ARGV[6])
  redis.call('ZADD', expiry, tonumber(ARGV[7]), member)
  if isNew == 1 and redis.call('HINCRBY', users, user, 1) == 1 then result = 1 end
elseif op == 'remove' then
  result = drop(ARGV[4], ARGV[5])
elseif op == 'get' then
  return redis.call('HGETALL', entries)
elseif op == 'touch' then
  for i = 5, #ARGV do redis.call('ZADD', expiry, 'XX', tonumber(ARGV[4]), ARGV[i]) end
end
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, keyTtl) end
return result
