#!lua flags=allow-cross-slot-keys
-- Remove one entry from the feeds of a batch of viewers (a deleted tweet's fan-out, an undone
-- retweet's).
-- KEYS[1] and ARGV: the layout of push.lua (the markers, the cap and the original are unused
-- here), with its rule that on a cluster every key and channel lives on the node that runs the
-- call. The entry leaves the viewer's feed index too; if it was the entry showing its original,
-- the next entry of that original (_feed_index.lua: the earliest left) shows it from now on.
-- Publishes the event to online viewers whose feed held the member, and then, if another
-- entry now shows the original, a new-tweet event for that entry (the live feed shows the
-- original again, retweeted by whoever's entry shows it now).
-- Returns how many feeds lost the member.
-- include: _feed_index.lua
local n = tonumber(ARGV[8])
local removed = 0
for i = 1, n do
  local key, index = ARGV[8 + i], ARGV[8 + 3 * n + i]
  local gone, promoted = remove_entry(key, index, ARGV[4])
  if gone then
    removed = removed + 1
    if redis.call('EXISTS', ARGV[8 + n + i]) == 1 then
      local now = promoted and entry_event('tweet', promoted)
      publish_shown_change(ARGV[6], ARGV[8 + 2 * n + i], ARGV[5], now)
    end
  end
end
return removed
