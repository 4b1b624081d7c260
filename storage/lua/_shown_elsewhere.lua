-- Snippet (not a script): included by scripts that keep an original once in a feed.
-- Defines shown_elsewhere(feed, index, original, entry): whether feed `feed` shows the original
-- (16-byte member `original`) at an entry other than `entry`: its own entry, or the retweet
-- entry its retweet index `index` (feed_originals:{V}) names, if that is still in the feed.
local function shown_elsewhere(feed, index, original, entry)
  if redis.call('ZSCORE', feed, original) then return true end
  local shown = redis.call('HGET', index, original)
  return shown ~= false and shown ~= entry and redis.call('ZSCORE', feed, shown) ~= false
end
