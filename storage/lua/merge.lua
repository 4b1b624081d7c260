-- Add entries to an existing feed (a follow) or to one being built (a rebuild).
-- KEYS[1]: feed:{V}; KEYS[2]: feed_originals:{V} (V's retweet index; one slot: {V}).
-- ARGV: COMPLETE, BUILDING, cap, ttl (s), finish ('1': mark the feed complete), m, the m
-- members, then pairs (original's 16-byte member, member of the retweet entry showing it) for
-- the retweet entries among the members.
-- Adds the members by the rule push applies too (_shown_elsewhere.lua: of the entries showing
-- one original, the earliest stays; a retweet entry is recorded in the index), with `finish`
-- adds COMPLETE and drops BUILDING, trims to the cap and sets the TTL (of both keys).
-- Returns 1, or 0 (having done nothing) if the key is gone.
-- include: _trim.lua
-- include: _shown_elsewhere.lua
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local m = tonumber(ARGV[6])
local originals = {}
for i = 7 + m, #ARGV, 2 do originals[ARGV[i + 1]] = ARGV[i] end
for i = 7, 6 + m do
  local original = originals[ARGV[i]]
  if original then add_retweet(KEYS[1], KEYS[2], original, ARGV[i])
  else add_plain(KEYS[1], KEYS[2], ARGV[i]) end
end
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[1], 0, ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[2])
end
trim(KEYS[1], tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[1], ARGV[4])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
return 1
