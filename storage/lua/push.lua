#!lua flags=allow-cross-slot-keys
-- Push one entry into the existing feeds of a batch of viewers (fan-out).
-- KEYS[1]: the first viewer's feed key (feed:{V}); it routes the call on a cluster.
-- ARGV: COMPLETE, BUILDING, cap, member, event, the publish command ('PUBLISH' on one server,
-- 'SPUBLISH' on a cluster), the original's 16-byte member when the entry is a retweet (else
-- ''), n, then the n feed keys (feed:{V}), the n presence keys (presence:{V}), the n live
-- channels (live:{V}) and the n feed indexes (feed_originals:{V}) of the batch's viewers, in
-- one order.
-- On a cluster every one of them must live on the node that runs the call (the caller groups a
-- batch by node); they may span its slots, which the flag on the first line allows.
-- Adds the member only to feeds that exist with a whole index (never creates a one-item feed),
-- and records it in the index (_feed_index.lua: every entry is kept; of the entries of one
-- original the earliest shows, the rule the follow merge and the rebuild apply too), trims
-- each feed to the cap, and publishes the event to online viewers whose feed did not hold the
-- member yet and shows it (so a retried batch sends no duplicate, and a retweet entry hidden
-- behind an earlier entry of its original sends nothing). Where the member hides the entry
-- that showed its original until now (it arrived after a later retweet of the same original:
-- fan-out jobs finish in any order), that entry's deletion goes first, as when a removal lets
-- the next entry show (unpush.lua), so the live feed shows what a re-read shows.
-- Returns how many feeds gained the member.
-- include: _feed_index.lua
local original = ARGV[7]
if original == '' then original = nil end
local n = tonumber(ARGV[8])
local added = 0
for i = 1, n do
  local key = ARGV[8 + i]
  local index = ARGV[8 + 3 * n + i]
  if indexed(key, index) and add_entry(key, index, ARGV[4], original) then
    added = added + 1
    trim(key, index, tonumber(ARGV[3]))
    redis.call('PEXPIRE', index, redis.call('PTTL', key))
    if redis.call('EXISTS', ARGV[8 + n + i]) == 1 and shows(key, index, ARGV[4]) then
      -- Looked for only here (an online viewer): a push into an offline feed pays nothing.
      local hidden = hidden_by(key, index, ARGV[4], original)
      if hidden then
        local gone = entry_event('deleted', hidden, original or ARGV[4])
        publish_shown_change(ARGV[6], ARGV[8 + 2 * n + i], gone, ARGV[5])
      else
        redis.call(ARGV[6], ARGV[8 + 2 * n + i], ARGV[5])
      end
    end
  end
end
return added
