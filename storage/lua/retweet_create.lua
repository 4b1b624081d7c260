-- Store a retweet of U's, append it to U's timeline and record it in U's retweets, atomically;
-- a second retweet of the same original returns the first.
-- KEYS: tweet:{U}:<R>, timeline:{U}, retweets:{U} (one slot: {U}).
-- ARGV: the retweet's document json, its timeline member, the original's 16-byte ref member,
-- the retweet's id (decimal), the retweet's tombstone json, how long (s) a loser's tombstone
-- stays.
-- Returns the id of U's retweet of that original: ARGV[4] if this call made it, else the
-- earlier one's. A losing call writes only a tombstone under its own id R (never returned to
-- anyone, expiring after ARGV[6] s), so the fan-out job it queued before calling finds R
-- deleted and ends quietly instead of waiting for a document that never comes.
local existing = redis.call('HGET', KEYS[3], ARGV[3])
if existing then
  if existing ~= ARGV[4] then redis.call('SET', KEYS[1], ARGV[5], 'EX', ARGV[6], 'NX') end
  return existing
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 0, ARGV[2])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
return ARGV[4]
