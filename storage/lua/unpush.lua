#!lua flags=allow-cross-slot-keys
-- Remove one entry from the feeds of a batch of viewers (a deleted tweet's fan-out).
-- KEYS[1] and ARGV: the layout of push.lua (the markers and the cap are unused here), with its
-- rule that on a cluster every key and channel lives on the node that runs the call.
-- Publishes the event to online viewers whose feed held the member.
-- Returns how many feeds lost the member.
local n = tonumber(ARGV[7])
local removed = 0
for i = 1, n do
  if redis.call('ZREM', ARGV[7 + i], ARGV[4]) == 1 then
    removed = removed + 1
    if redis.call('EXISTS', ARGV[7 + n + i]) == 1 then
      redis.call(ARGV[6], ARGV[7 + 2 * n + i], ARGV[5])
    end
  end
end
return removed
