#!lua flags=allow-cross-slot-keys
-- Push one entry into the existing feeds of a batch of viewers (fan-out).
-- KEYS[1]: the first viewer's feed key (feed:{V}); it routes the call on a cluster.
-- ARGV: COMPLETE, BUILDING, cap, member, event, the publish command ('PUBLISH' on one server,
-- 'SPUBLISH' on a cluster), n, then the n feed keys (feed:{V}), the n presence keys
-- (presence:{V}) and the n live channels (live:{V}) of the batch's viewers, in one order.
-- On a cluster every one of them must live on the node that runs the call (the caller groups a
-- batch by node); they may span its slots, which the flag on the first line allows.
-- Adds the member only to feeds that exist (never creates a one-item feed), trims each to the
-- cap, and publishes the event to online viewers whose feed did not hold the member yet (so a
-- retried batch sends no duplicate).
-- Returns how many feeds gained the member.
-- include: _trim.lua
local n = tonumber(ARGV[7])
local added = 0
for i = 1, n do
  local key = ARGV[7 + i]
  if redis.call('EXISTS', key) == 1 and redis.call('ZADD', key, 0, ARGV[4]) == 1 then
    added = added + 1
    trim(key, tonumber(ARGV[3]))
    if redis.call('EXISTS', ARGV[7 + n + i]) == 1 then
      redis.call(ARGV[6], ARGV[7 + 2 * n + i], ARGV[5])
    end
  end
end
return added
