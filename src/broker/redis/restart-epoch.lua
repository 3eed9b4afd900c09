-- A node saw the stream go back (a failover lost writes): a new epoch, if it is still on the
-- old one (another node may have restarted it already).
-- KEYS[1] meta hash   ARGV[1] the epoch seen   ARGV[2] the new epoch
-- Returns 1 when the epoch was restarted, 0 otherwise.
if redis.call('HGET', KEYS[1], 'e') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'e', ARGV[2])
  return 1
end
return 0
