#!lua flags=allow-cross-slot-keys
-- Remove one entry from the feeds of a batch of viewers (a deleted tweet's fan-out, an undone
-- retweet's).
-- KEYS[1] and ARGV: the layout of push.lua (the markers and the cap are unused here), with its
-- rule that on a cluster every key and channel lives on the node that runs the call. For a
-- retweet, the viewer's retweet index forgets it if it named this entry.
-- Publishes the event to online viewers whose feed held the member.
-- Returns how many feeds lost the member.
local original = ARGV[7]
local n = tonumber(ARGV[8])
local removed = 0
for i = 1, n do
  if original ~= '' and redis.call('HGET', ARGV[8 + 3 * n + i], original) == ARGV[4] then
    redis.call('HDEL', ARGV[8 + 3 * n + i], original)
  end
  if redis.call('ZREM', ARGV[8 + i], ARGV[4]) == 1 then
    removed = removed + 1
    if redis.call('EXISTS', ARGV[8 + n + i]) == 1 then
      redis.call(ARGV[6], ARGV[8 + 2 * n + i], ARGV[5])
    end
  end
end
return removed
