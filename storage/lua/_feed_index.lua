-- Snippet (not a script): included by every script that writes or pages a feed.
-- A feed keeps every entry; its index decides which entry SHOWS each original, by one rule: of
-- the entries of one original (its own entry, retweet entries of it), the earliest shows (the
-- original's own entry is older than any retweet of it); the others stay, hidden, and the next
-- one shows once the entry that showed it leaves (undo, delete, unfollow clean-up, trim).
-- The index, feed_originals:{V} (a hash, same slot and TTL as feed:{V}), holds:
--   'v'                      -> '2': the index is whole (a feed whose index is missing, evicted
--                               or of an older format, reads as not complete: it is rebuilt);
--   original's 16-byte member -> its retweet entries in the feed, 16 bytes each, earliest first;
--   'r' .. retweet entry     -> the original's member (for removals that know only the entry).
-- Functions (F: feed key, I: index key):
--   indexed(F, I): the feed exists and its index is whole (writers add only then).
--   shows(F, I, m): whether entry m shows (not a retweet entry, or the one showing its original).
--   shown_elsewhere(F, I, o, m): whether the feed shows original o at an entry other than m.
--   add_entry(F, I, m, o): adds entry m (o: the original's member for a retweet entry, else
--     nil); returns whether the feed gained it.
--   remove_entry(F, I, m): removes entry m and its index fields; returns whether it was there
--     and the entry that shows its original from now on if that changed (else nil).
--   hidden_by(F, I, m, o): for entry m, just added and showing its original (o, or m itself
--     for an original's own entry), the entry that showed it until then (else nil).
--   entry_event(kind, m, o): the live event of entry m (as social/fanout_plan.live_event).
--   publish_shown_change(cmd, channel, gone, now): tells a live viewer that the entry showing
--     an original changed (a removal promoted the next one, or a push hid a later one).
--   trim(F, I, cap): removes the oldest entries beyond `cap` by remove_entry (the index stays
--     bounded with the feed), keeping the markers; the including script passes them as ARGV[1]
--     (COMPLETE) and ARGV[2] (BUILDING).
local function indexed(F, I)
  return redis.call('EXISTS', F) == 1 and redis.call('HEXISTS', I, 'v') == 1
end
-- Whether 16-byte member a sorts before b (bytewise, as ZRANGE BYLEX orders them).
local function earlier(a, b)
  for k = 1, 16 do
    local x, y = string.byte(a, k), string.byte(b, k)
    if x ~= y then return x < y end
  end
  return false
end
-- The retweet entry showing original o, or nil (its own entry shows, or none is in the feed).
local function shown_retweet(F, I, o)
  if redis.call('ZSCORE', F, o) then return nil end
  local list = redis.call('HGET', I, o)
  if not list then return nil end
  for k = 1, #list, 16 do
    local m = string.sub(list, k, k + 15)
    if redis.call('ZSCORE', F, m) then return m end
  end
  return nil
end
-- Which entry shows original o (its own, a retweet entry, or nil).
local function showing(F, I, o)
  if redis.call('ZSCORE', F, o) then return o end
  return shown_retweet(F, I, o)
end
local function shows(F, I, m)
  local o = redis.call('HGET', I, 'r' .. m)
  if not o then return true end
  return shown_retweet(F, I, o) == m
end
local function shown_elsewhere(F, I, o, m)
  local at = showing(F, I, o)
  return at ~= nil and at ~= m
end
-- Rewrite o's list of retweet entries: without `drop`, with `put` in its place, keeping only
-- members still in the feed.
local function relist(F, I, o, drop, put)
  local list = redis.call('HGET', I, o) or ''
  local out = {}
  for k = 1, #list, 16 do
    local x = string.sub(list, k, k + 15)
    if x ~= drop and x ~= put and redis.call('ZSCORE', F, x) then
      if put and earlier(put, x) then
        out[#out + 1] = put
        put = nil
      end
      out[#out + 1] = x
    end
  end
  if put then out[#out + 1] = put end
  if #out == 0 then redis.call('HDEL', I, o) else redis.call('HSET', I, o, table.concat(out)) end
end
local function add_entry(F, I, m, o)
  local gained = redis.call('ZADD', F, 0, m) == 1
  if o then
    redis.call('HSET', I, 'r' .. m, o)
    relist(F, I, o, nil, m)
  end
  return gained
end
local function remove_entry(F, I, m)
  local o = redis.call('HGET', I, 'r' .. m)
  local key = o or m  -- the original whose showing entry may change
  local before = showing(F, I, key)
  if redis.call('ZREM', F, m) == 0 then
    if o then redis.call('HDEL', I, 'r' .. m) end
    return false, nil
  end
  if o then
    redis.call('HDEL', I, 'r' .. m)
    relist(F, I, o, m, nil)
  end
  if before ~= m then return true, nil end
  return true, showing(F, I, key)
end
local function trim(F, I, cap)
  local markers = 0
  if redis.call('ZSCORE', F, ARGV[1]) then markers = markers + 1 end
  if redis.call('ZSCORE', F, ARGV[2]) then markers = markers + 1 end
  local excess = redis.call('ZCARD', F) - markers - cap
  if excess > 0 then
    for _, m in ipairs(redis.call('ZRANGE', F, markers, markers + excess - 1)) do
      remove_entry(F, I, m)
    end
  end
end
-- The decimal digits of 8 big-endian bytes (a 64-bit id: beyond a Lua number's exact range).
local function decimal(bytes)
  local digits, out = {string.byte(bytes, 1, 8)}, ''
  repeat
    local rem, more = 0, false
    for k = 1, 8 do
      local cur = rem * 256 + digits[k]
      digits[k] = math.floor(cur / 10)
      rem = cur % 10
      if digits[k] ~= 0 then more = true end
    end
    out = rem .. out
  until not more
  return out
end
-- The live event of entry m (16 bytes), as social/fanout_plan.live_event writes it: `kind`
-- 'tweet' (new in the feed) or 'deleted'; o, for a retweet entry, its original's member (nil:
-- not named).
local function entry_event(kind, m, o)
  local event = '{"kind": "' .. kind .. '", "author_id": ' .. decimal(string.sub(m, 9, 16))
    .. ', "tweet_id": ' .. decimal(string.sub(m, 1, 8))
  if o then
    event = event .. ', "original": [' .. decimal(string.sub(o, 9, 16)) .. ', '
      .. decimal(string.sub(o, 1, 8)) .. ']'
  end
  return event .. '}'
end
-- Entry m was just added and shows its original (o; nil: m is the original's own entry): the
-- entry that showed it until then, which m now hides, or nil. That was the earliest other
-- entry of it in the feed (the original's own entry, when there, shows and is never hidden),
-- so only its retweet list is read. Nil when m is not in the feed (trimmed at once).
local function hidden_by(F, I, m, o)
  if not redis.call('ZSCORE', F, m) then return nil end
  local list = redis.call('HGET', I, o or m)
  if not list then return nil end
  for k = 1, #list, 16 do
    local x = string.sub(list, k, k + 15)
    if x ~= m and redis.call('ZSCORE', F, x) then return x end
  end
  return nil
end
-- Tells a live viewer (`channel`, published with `cmd`: PUBLISH or SPUBLISH) that the entry
-- showing an original changed: first `gone`, the deletion event of the entry that stopped
-- showing it (or left the feed), then `now`, the new-tweet event of the entry that shows it
-- from now on (nil: none does). A subscriber replaces the one by the other, as a re-read shows.
local function publish_shown_change(cmd, channel, gone, now)
  redis.call(cmd, channel, gone)
  if now then redis.call(cmd, channel, now) end
end
