-- Reads a stream's position and publications after an offset. It creates nothing: a channel
-- never published to (no meta hash) reads as epoch '' with top 0 and earliest 1, so reading
-- random channel names leaves no keys behind; the first publish creates the epoch (publish.lua).
-- KEYS[1] stream, KEYS[2] meta hash
-- ARGV[1] since offset (-1: none)  ARGV[2] limit  ARGV[3] history ttl ms  ARGV[4] now (ms)
-- ARGV[5] history size  ARGV[6] max bytes of data returned (-1: no bound; at least one entry)
-- ARGV[7] '1' in a latest-value stream (its held offsets have gaps; its size bounds keys)
-- Returns {epoch, top, earliest, entries}; entries as XRANGE gives them.
local stream, meta = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'e')
if not epoch then return {'', 0, 1, {}} end
local top = tonumber(redis.call('HGET', meta, 's') or '0')
local now, ttl = tonumber(ARGV[4]), tonumber(ARGV[3])
local function fresh(entry)
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 't' then return tonumber(fields[i + 1]) + ttl > now end
  end
  return true
end
local function offsetOf(entry)
  return tonumber(string.match(entry[1], '^0%-(%d+)$'))
end
-- The first entry at or after offset x (nil if none).
local function at(x)
  return redis.call('XRANGE', stream, '0-' .. x, '+', 'COUNT', 1)[1]
end
-- The earliest publication still held. Entries are appended in time order, so the expired ones
-- form a prefix of the stream, however long: binary search over offsets for the first fresh
-- entry, one XRANGE COUNT 1 per step (O(log n) steps, each O(log n)).
local earliest = top + 1
local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
if first then
  if fresh(first) then
    earliest = offsetOf(first)
  else
    local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
    if fresh(last) then
      -- Invariant: the entry at or after lo is expired, the entry at or after hi is fresh.
      local lo, hi = offsetOf(first), offsetOf(last)
      while hi - lo > 1 do
        local mid = math.floor((lo + hi) / 2)
        if fresh(at(mid)) then hi = mid else lo = mid end
      end
      earliest = offsetOf(at(hi))
    end
  end
end
-- Publications beyond a (since lowered) size count as trimmed, as the next publish trims them.
if ARGV[7] ~= '1' then earliest = math.max(earliest, top - tonumber(ARGV[5]) + 1, 1) end
local since, limit, maxBytes = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[6])
local entries = {}
if since >= 0 and limit > 0 then
  local from = math.max(since + 1, earliest)
  if from <= top then entries = redis.call('XRANGE', stream, '0-' .. from, '+', 'COUNT', limit) end
end
if maxBytes >= 0 and #entries > 1 then
  local bytes, kept = 0, {}
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'd' then bytes = bytes + #fields[i + 1] end
    end
    if #kept > 0 and bytes > maxBytes then break end
    kept[#kept + 1] = entry
  end
  entries = kept
end
return {epoch, top, earliest, entries}
