-- Undo a tweet that was stored but could not be acknowledged (too few replicas confirmed it):
-- tombstone it (no retry or queued fan-out can bring it back), drop it from the timeline, free
-- its idempotency key (a retry with the same key then posts afresh) and give its media back to
-- the published state (a retry may attach them again).
-- KEYS: tweet:{A}:<id>, timeline:{A}, idem:{A}:<sha256>, then the media records media:{A}:<id>.
-- ARGV: tombstone json, timeline member, tweet id, '1' if the client sent an idempotency key.
-- Returns 1 if the tweet was live, else 0. Only what this tweet holds is touched: a key or a
-- media record that now names another tweet is left alone.
local raw = redis.call('GET', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
if ARGV[4] == '1' and redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
for i = 4, #KEYS do
  local record = redis.call('HMGET', KEYS[i], 'status', 'tweet_id')
  if record[1] == 'attached' and record[2] == ARGV[3] then
    redis.call('HSET', KEYS[i], 'status', 'published')
    redis.call('HDEL', KEYS[i], 'tweet_id')
  end
end
if not raw or string.find(raw, '"deleted":true', 1, true) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
