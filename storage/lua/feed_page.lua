-- One page of a viewer's feed with everything a read decides on, in one call.
-- KEYS: feed:{V}, following_ver:{V}, following_celebs:{V}, followees:{V} (one slot: {V}).
-- ARGV: the ZRANGE BYLEX start ("+" or "(<member>"), count.
-- Returns {version, complete (0/1), ttl, celebrities cached (0/1), the celebrity ids,
-- followees cached (0/1), the members (markers included, newest first), and for each member
-- 1 if V follows its author (bytes 9-16: the author id as followees:{V} holds it), else 0}.
-- The markers (COMPLETE, BUILDING) are 16 bytes of which the first 8 are zero.
local members = redis.call('ZRANGE', KEYS[1], ARGV[1], '-', 'BYLEX', 'REV', 'LIMIT', 0, ARGV[2])
local complete = redis.call('ZSCORE', KEYS[1], string.rep('\0', 16)) and 1 or 0
local celebs_cached = redis.call('EXISTS', KEYS[3])
local celebs = celebs_cached == 1 and redis.call('SMEMBERS', KEYS[3]) or {}
local followees_cached = redis.call('EXISTS', KEYS[4])
local flags = {}
if followees_cached == 1 then
  for i, member in ipairs(members) do
    flags[i] = redis.call('SISMEMBER', KEYS[4], string.sub(member, 9, 16))
  end
end
return {redis.call('GET', KEYS[2]) or '0', complete, redis.call('TTL', KEYS[1]), celebs_cached,
        celebs, followees_cached, members, flags}
