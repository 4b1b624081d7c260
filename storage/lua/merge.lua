-- Add entries to an existing feed (a follow) or to one being built (a rebuild).
-- KEYS[1]: feed:{V}; KEYS[2]: feed_originals:{V} (V's retweet index; one slot: {V}).
-- ARGV: COMPLETE, BUILDING, cap, ttl (s), finish ('1': mark the feed complete), m, the m
-- members, then pairs (original's 16-byte member, member of the retweet entry showing it).
-- Adds the members, records the pairs in the index (a later push of another retweet of those
-- originals then leaves the feed alone), with `finish` adds COMPLETE and drops BUILDING, trims
-- to the cap and sets the TTL (of both keys).
-- Returns 1, or 0 (having done nothing) if the key is gone.
-- include: _trim.lua
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local m = tonumber(ARGV[6])
for i = 7, 6 + m do redis.call('ZADD', KEYS[1], 0, ARGV[i]) end
for i = 7 + m, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[1], 0, ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[2])
end
trim(KEYS[1], tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[1], ARGV[4])
if #ARGV > 6 + m then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
return 1
