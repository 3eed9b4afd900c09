-- Atomically: idempotency check, history append, offset increment, PUBLISH.
-- KEYS[1] stream, KEYS[2] meta hash {e = epoch, s = top offset}, KEYS[3] idempotency key (absent
-- or '' when none; absent on a cluster, where every key must hash to the channel's slot)
-- ARGV[1] data (JSON text)     ARGV[2] info (JSON text or '')
-- ARGV[3] history size         ARGV[4] history ttl ms       ARGV[5] meta ttl ms
-- ARGV[6] epoch for a new stream                           ARGV[7] pub/sub channel
-- ARGV[8] idempotency ttl ms   ARGV[9] now (ms)           ARGV[10] PUBLISH, or SPUBLISH (cluster)
-- ARGV[11] '1' in a latest-value stream (delivery: "latest"), else ''   ARGV[12] its conflation key
-- A latest-value stream holds the newest entry per key (field k): the meta hash maps 'k:' .. key
-- to the key's offset, a publication deletes the key's previous entry, and past `size` entries
-- the oldest go (their keys' fields with them).
-- Returns {offset, epoch, duplicate (0/1)}.
local stream, meta, idem = KEYS[1], KEYS[2], KEYS[3] or ''
local size = tonumber(ARGV[3])
local latest, lkey = ARGV[11] == '1', 'k:' .. (ARGV[12] or '')

-- Appends the entry of `offset`; MAXLEN trims a plain stream, keepLatest a latest-value one.
local function add(off)
  if latest then
    return redis.pcall('XADD', stream, '0-' .. off, 'd', ARGV[1], 'i', ARGV[2], 't', ARGV[9], 'k', ARGV[12])
  end
  return redis.pcall('XADD', stream, 'MAXLEN', size, '0-' .. off, 'd', ARGV[1], 'i', ARGV[2], 't', ARGV[9])
end
-- The key of an entry, when it is a latest-value one.
local function keyOf(entry)
  local fields = entry[2]
  for i = 1, #fields, 2 do if fields[i] == 'k' then return fields[i + 1] end end
  return nil
end
-- Deletes an entry; a latest-value one also leaves its key's field when the field names it.
local function drop(entry)
  redis.call('XDEL', stream, entry[1])
  local k = keyOf(entry)
  if k and redis.call('HGET', meta, 'k:' .. k) == string.sub(entry[1], 3) then redis.call('HDEL', meta, 'k:' .. k) end
end
-- A latest-value publication at `off` replaces the previous entry of its key; past `size`
-- entries (a bounded number per call) the oldest go.
local function keepLatest(off)
  local prev = redis.call('HGET', meta, lkey)
  if prev then
    local old = redis.call('XRANGE', stream, '0-' .. prev, '0-' .. prev)[1]
    -- The entry must still be the key's: a field left from an older epoch names another.
    if old and keyOf(old) == ARGV[12] then redis.call('XDEL', stream, old[1]) end
  end
  redis.call('HSET', meta, lkey, off)
  local excess = redis.call('XLEN', stream) - size
  if excess > 0 then
    for _, entry in ipairs(redis.call('XRANGE', stream, '-', '+', 'COUNT', math.min(excess, 16))) do drop(entry) end
  end
end

if idem ~= '' then
  local prev = redis.call('HMGET', idem, 'o', 'e')
  if prev[1] then return {tonumber(prev[1]), prev[2], 1} end
end

local offset, epoch = 0, ''
if size > 0 then
  epoch = redis.call('HGET', meta, 'e')
  if not epoch then
    epoch = ARGV[6]
    redis.call('DEL', stream)
    redis.call('HSET', meta, 'e', epoch, 's', 0)
  end
  -- The append comes first: if it fails, nothing else was written (Redis does not undo a
  -- script's earlier writes).
  offset = tonumber(redis.call('HGET', meta, 's') or '0') + 1
  local added = add(offset)
  if type(added) == 'table' and added.err then
    -- The stream is ahead of its position (writes lost unevenly in a failover): a new epoch,
    -- never offsets that overlap what subscribers may have seen.
    epoch = ARGV[6]
    offset = 1
    redis.call('DEL', stream)
    add(1)
    redis.call('HSET', meta, 'e', epoch)
  end
  if latest then keepLatest(offset) end
  redis.call('HSET', meta, 's', offset)
  local now, ttl = tonumber(ARGV[9]), tonumber(ARGV[4])
  -- Drop a bounded number of expired entries from the head (they are in time order).
  local head = redis.call('XRANGE', stream, '-', '+', 'COUNT', 16)
  for _, entry in ipairs(head) do
    local fields = entry[2]
    local t
    for i = 1, #fields, 2 do if fields[i] == 't' then t = tonumber(fields[i + 1]) end end
    if t and t + ttl <= now then drop(entry) else break end
  end
  redis.call('PEXPIRE', stream, ttl)
  redis.call('PEXPIRE', meta, tonumber(ARGV[5]))
end

redis.call(ARGV[10] or 'PUBLISH', ARGV[7], 'p' .. offset .. '\n' .. epoch .. '\n' .. ARGV[2] .. '\n' .. ARGV[1])

if idem ~= '' then
  redis.call('HSET', idem, 'o', offset, 'e', epoch)
  redis.call('PEXPIRE', idem, tonumber(ARGV[8]))
end
return {offset, epoch, 0}
