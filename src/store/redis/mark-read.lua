-- Moves a read position forward within an epoch (a new epoch replaces it).
-- KEYS[1] hash of user -> "offset:epoch" for one channel
-- ARGV[1] user  ARGV[2] offset  ARGV[3] epoch  ARGV[4] key ttl ms (0: none)
-- Returns the stored "offset:epoch".
local current = redis.call('HGET', KEYS[1], ARGV[1])
local offset, epoch = tonumber(ARGV[2]), ARGV[3]
if current then
  local sep = string.find(current, ':', 1, true)
  local cur = tonumber(string.sub(current, 1, sep - 1))
  if string.sub(current, sep + 1) == epoch and cur >= offset then return current end
end
local value = offset .. ':' .. epoch
redis.call('HSET', KEYS[1], ARGV[1], value)
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4])) end
return value
