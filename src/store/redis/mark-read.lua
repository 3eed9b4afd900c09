-- Moves a read position forward within an epoch (a new epoch replaces it), and keeps the
-- channel's positions for a retention after their last write.
-- KEYS[1] hash of user -> "offset:epoch" for one channel
-- KEYS[2] sorted set of user -> last write (ms) for the same channel
-- ARGV[1] user  ARGV[2] offset  ARGV[3] epoch  ARGV[4] retention ms (0: none)  ARGV[5] now ms
-- Returns the stored "offset:epoch".
local current = redis.call('HGET', KEYS[1], ARGV[1])
local offset, epoch = tonumber(ARGV[2]), ARGV[3]
local value = offset .. ':' .. epoch
if current then
  local sep = string.find(current, ':', 1, true)
  local cur = tonumber(string.sub(current, 1, sep - 1))
  if string.sub(current, sep + 1) == epoch and cur >= offset then value = current end
end
if value ~= current then redis.call('HSET', KEYS[1], ARGV[1], value) end
local retention, now = tonumber(ARGV[4]), tonumber(ARGV[5])
if retention > 0 then
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  -- Users who wrote nothing here within the retention go, a bounded number per call.
  for _, user in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - retention, 'LIMIT', 0, 16)) do
    redis.call('HDEL', KEYS[1], user)
    redis.call('ZREM', KEYS[2], user)
  end
  redis.call('PEXPIRE', KEYS[1], retention)
  redis.call('PEXPIRE', KEYS[2], retention)
end
return value
