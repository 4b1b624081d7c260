-- One page of a viewer's feed with everything a read decides on, in one call.
-- KEYS: feed:{V}, following_ver:{V}, following_celebs:{V}, followees:{V}, feed_originals:{V}
-- (one slot: {V}).
-- ARGV: the ZRANGE BYLEX start ("+" or "(<member>"), count.
-- Returns {version, complete (0/1), ttl, celebrities cached (0/1), the celebrity ids,
-- followees cached (0/1), the members (markers included, newest first), and for each member
-- 1 if V follows its author (bytes 9-16: the author id as followees:{V} holds it), else 0}.
-- The members are the entries that show (_feed_index.lua): a retweet entry hidden behind an
-- earlier entry of its original is passed over, reading on until `count` are found or the
-- feed ends. The markers (COMPLETE, BUILDING) are 16 bytes of which the first 8 are zero; the
-- feed is complete only with COMPLETE and a whole index.
-- include: _feed_index.lua
local want = tonumber(ARGV[2])
local members, start = {}, ARGV[1]
while #members < want do
  local chunk = redis.call('ZRANGE', KEYS[1], start, '-', 'BYLEX', 'REV', 'LIMIT', 0, want)
  for _, member in ipairs(chunk) do
    if #members < want and shows(KEYS[1], KEYS[5], member) then members[#members + 1] = member end
  end
  if #chunk < want then break end
  start = '(' .. chunk[#chunk]
end
local complete = 0
if redis.call('ZSCORE', KEYS[1], string.rep('\0', 16)) and redis.call('HEXISTS', KEYS[5], 'v') == 1
then complete = 1 end
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
