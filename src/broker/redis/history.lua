-- Reads a stream's position and publications after an offset, creating the stream's epoch
-- when it has none (so a subscriber gets an epoch before the first publication).
-- KEYS[1] stream, KEYS[2] meta hash
-- ARGV[1] epoch for a new stream  ARGV[2] meta ttl ms  ARGV[3] since offset (-1: none)
-- ARGV[4] limit                   ARGV[5] history ttl ms  ARGV[6] now (ms)
-- Returns {epoch, top, earliest, entries}; entries as XRANGE gives them.
local stream, meta = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'e', epoch, 's', 0)
  redis.call('PEXPIRE', meta, tonumber(ARGV[2]))
end
local top = tonumber(redis.call('HGET', meta, 's') or '0')
local now, ttl = tonumber(ARGV[6]), tonumber(ARGV[5])
local function fresh(entry)
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 't' then return tonumber(fields[i + 1]) + ttl > now end
  end
  return true
end
-- The earliest publication still held: skip the expired head (bounded scan).
local earliest = top + 1
local head = redis.call('XRANGE', stream, '-', '+', 'COUNT', 64)
for _, entry in ipairs(head) do
  if fresh(entry) then
    earliest = tonumber(string.match(entry[1], '^0%-(%d+)$'))
    break
  end
end
local since, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local entries = {}
if since >= 0 and limit > 0 then
  local from = math.max(since + 1, earliest)
  if from <= top then entries = redis.call('XRANGE', stream, '0-' .. from, '+', 'COUNT', limit) end
end
return {epoch, top, earliest, entries}
