-- Push one entry into the existing feeds of a batch of viewers (fan-out).
-- KEYS: n feed keys (feed:{V}), then the n presence keys (presence:{V}) of the same viewers.
-- ARGV: COMPLETE, BUILDING, cap, member, event, then the n live channels of the same viewers.
-- Adds the member only to feeds that exist (never creates a one-item feed), trims each to the
-- cap, and publishes the event to online viewers whose feed did not hold the member yet (so a
-- retried batch sends no duplicate).
-- Returns how many feeds gained the member.
-- include: _trim.lua
local n = #KEYS / 2
local added = 0
for i = 1, n do
  local key = KEYS[i]
  if redis.call('EXISTS', key) == 1 and redis.call('ZADD', key, 0, ARGV[4]) == 1 then
    added = added + 1
    trim(key, tonumber(ARGV[3]))
    if redis.call('EXISTS', KEYS[n + i]) == 1 then
      redis.call('PUBLISH', ARGV[5 + i], ARGV[5])
    end
  end
end
return added
