-- Remove one entry from the feeds of a batch of viewers (a deleted tweet's fan-out).
-- KEYS: n feed keys (feed:{V}), then the n presence keys (presence:{V}) of the same viewers.
-- ARGV: COMPLETE, BUILDING, cap, member, event, then the n live channels of the same viewers
-- (the layout of push.lua; the markers and the cap are unused here).
-- Publishes the event to online viewers whose feed held the member.
-- Returns how many feeds lost the member.
local n = #KEYS / 2
local removed = 0
for i = 1, n do
  if redis.call('ZREM', KEYS[i], ARGV[4]) == 1 then
    removed = removed + 1
    if redis.call('EXISTS', KEYS[n + i]) == 1 then
      redis.call('PUBLISH', ARGV[5 + i], ARGV[5])
    end
  end
end
return removed
