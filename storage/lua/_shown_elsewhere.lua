-- Snippet (not a script): included by scripts that keep an original once in a feed.
-- Defines shown_elsewhere(feed, index, original, entry): whether feed `feed` shows the original
-- (16-byte member `original`) at an entry other than `entry`: its own entry, or the retweet
-- entry its retweet index `index` (feed_originals:{V}) names, if that is still in the feed.
-- And the rule every writer of a feed applies (push, follow merge, rebuild): of the entries
-- showing one original, the earliest stays (the original's own entry is older than any
-- retweet of it):
--   add_plain(feed, index, member): adds an original's own entry; a retweet entry of it the
--     index names is removed (it is later).
--   add_retweet(feed, index, original, member): adds a retweet entry unless the feed shows
--     the original at an earlier entry; a later retweet entry of it is replaced. Returns
--     whether it added it.
local function shown_elsewhere(feed, index, original, entry)
  if redis.call('ZSCORE', feed, original) then return true end
  local shown = redis.call('HGET', index, original)
  return shown ~= false and shown ~= entry and redis.call('ZSCORE', feed, shown) ~= false
end
-- Whether 16-byte member a sorts before b (bytewise, as ZRANGE BYLEX orders them).
local function earlier(a, b)
  for k = 1, 16 do
    local x, y = string.byte(a, k), string.byte(b, k)
    if x ~= y then return x < y end
  end
  return false
end
local function add_plain(feed, index, member)
  local shown = redis.call('HGET', index, member)
  if shown then
    redis.call('ZREM', feed, shown)
    redis.call('HDEL', index, member)
  end
  return redis.call('ZADD', feed, 0, member) == 1
end
local function add_retweet(feed, index, original, member)
  if redis.call('ZSCORE', feed, original) then return false end
  local shown = redis.call('HGET', index, original)
  if shown and shown ~= member and redis.call('ZSCORE', feed, shown) then
    if not earlier(member, shown) then return false end
    redis.call('ZREM', feed, shown)
  end
  redis.call('HSET', index, original, member)
  return redis.call('ZADD', feed, 0, member) == 1
end
