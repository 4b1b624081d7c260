-- Add entries to an existing feed (a follow) or to one being built (a rebuild).
-- KEYS[1]: feed:{V}.
-- ARGV: COMPLETE, BUILDING, cap, ttl (s), finish ('1': mark the feed complete), members...
-- Adds the members, with `finish` adds COMPLETE and drops BUILDING, trims to the cap and sets
-- the TTL.
-- Returns 1, or 0 (having done nothing) if the key is gone.
-- include: _trim.lua
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 6, #ARGV do redis.call('ZADD', KEYS[1], 0, ARGV[i]) end
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[1], 0, ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[2])
end
trim(KEYS[1], tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
