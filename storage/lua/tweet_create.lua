-- Store a tweet, append it to its author's timeline and attach its media, atomically.
-- KEYS: tweet:{A}:<id>, timeline:{A}, idem:{A}:<sha256>, then the media records media:{A}:<id>.
-- ARGV: document json, timeline member, idempotency ttl (s), tweet id, '1' if the client sent
-- an idempotency key, the tweet's tombstone json.
-- Returns the id of the tweet that now exists for this request (an earlier one for a repeated
-- idempotency key), or the error 'MEDIA_NOT_ATTACHABLE <key>' naming a media record that is not
-- published (nothing is written then). A repeat writes only a tombstone under its own id (never
-- returned to anyone, expiring with the key), so the fan-out job it queued before calling finds
-- that id deleted and ends quietly instead of waiting for a document that never comes.
local keyed = ARGV[5] == '1'
if keyed then
  local existing = redis.call('GET', KEYS[3])
  if existing then
    if existing ~= ARGV[4] then redis.call('SET', KEYS[1], ARGV[6], 'EX', ARGV[3], 'NX') end
    return existing
  end
end
for i = 4, #KEYS do
  if redis.call('HGET', KEYS[i], 'status') ~= 'published' then
    return redis.error_reply('MEDIA_NOT_ATTACHABLE ' .. KEYS[i])
  end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
if keyed then redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[3]) end
for i = 4, #KEYS do
  redis.call('HSET', KEYS[i], 'status', 'attached', 'tweet_id', ARGV[4])
end
return ARGV[4]
