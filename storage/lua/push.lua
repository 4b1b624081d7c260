#!lua flags=allow-cross-slot-keys
-- Push one entry into the existing feeds of a batch of viewers (fan-out).
-- KEYS[1]: the first viewer's feed key (feed:{V}); it routes the call on a cluster.
-- ARGV: COMPLETE, BUILDING, cap, member, event, the publish command ('PUBLISH' on one server,
-- 'SPUBLISH' on a cluster), the original's 16-byte member when the entry is a retweet (else
-- ''), n, then the n feed keys (feed:{V}), the n presence keys (presence:{V}), the n live
-- channels (live:{V}) and the n retweet indexes (feed_originals:{V}) of the batch's viewers, in
-- one order.
-- On a cluster every one of them must live on the node that runs the call (the caller groups a
-- batch by node); they may span its slots, which the flag on the first line allows.
-- Adds the member only to feeds that exist (never creates a one-item feed), trims each to the
-- cap, and publishes the event to online viewers whose feed did not hold the member yet (so a
-- retried batch sends no duplicate). Of the entries showing one original the earliest stays
-- (_shown_elsewhere.lua, the rule the follow merge and the rebuild apply too): a retweet is
-- added only to a feed that shows its original at no earlier entry (the index says which entry
-- shows it, if that is still in the feed) and is then recorded as the one that does; an
-- original (whose fan-out may run after a retweet's) replaces a retweet entry of it.
-- Returns how many feeds gained the member.
-- include: _trim.lua
-- include: _shown_elsewhere.lua
local original = ARGV[7]
local n = tonumber(ARGV[8])
local added = 0
-- Forget index entries whose feed entry was trimmed or dropped, once the index outgrows the
-- feed twice over (amortized: at most cap of its entries can still be in the feed).
local function prune(key, index)
  if redis.call('HLEN', index) <= 2 * tonumber(ARGV[3]) then return end
  local entries = redis.call('HGETALL', index)
  for j = 1, #entries, 2 do
    if not redis.call('ZSCORE', key, entries[j + 1]) then redis.call('HDEL', index, entries[j]) end
  end
end
for i = 1, n do
  local key = ARGV[8 + i]
  local index = ARGV[8 + 3 * n + i]
  local gained = false
  if redis.call('EXISTS', key) == 1 then
    if original == '' then gained = add_plain(key, index, ARGV[4])
    else gained = add_retweet(key, index, original, ARGV[4]) end
  end
  if gained then
    added = added + 1
    trim(key, tonumber(ARGV[3]))
    if original ~= '' then
      redis.call('PEXPIRE', index, redis.call('PTTL', key))
      prune(key, index)
    end
    if redis.call('EXISTS', ARGV[8 + n + i]) == 1 then
      redis.call(ARGV[6], ARGV[8 + 2 * n + i], ARGV[5])
    end
  end
end
return added
