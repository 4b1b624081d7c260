-- Add entries to an existing feed (a follow) or to one being built (a rebuild).
-- KEYS[1]: feed:{V}; KEYS[2]: feed_originals:{V} (V's feed index; one slot: {V}).
-- ARGV: COMPLETE, BUILDING, cap, ttl (s), finish ('1': mark the feed complete), m, the m
-- members, then pairs (original's 16-byte member, member of a retweet entry of it) for the
-- retweet entries among the members.
-- Adds every member and records it in the index (_feed_index.lua: of the entries of one
-- original the earliest shows, as for a push); with `finish` adds COMPLETE and drops BUILDING;
-- trims to the cap and sets the TTL (of both keys).
-- Returns 1, or 0 (having done nothing) if the feed or its index is gone.
-- include: _feed_index.lua
if not indexed(KEYS[1], KEYS[2]) then return 0 end
local m = tonumber(ARGV[6])
local originals = {}
for i = 7 + m, #ARGV, 2 do originals[ARGV[i + 1]] = ARGV[i] end
for i = 7, 6 + m do add_entry(KEYS[1], KEYS[2], ARGV[i], originals[ARGV[i]]) end
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[1], 0, ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[2])
end
trim(KEYS[1], KEYS[2], tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
