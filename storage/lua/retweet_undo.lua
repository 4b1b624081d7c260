-- Undo U's retweet R of an original: forget it in U's retweets, tombstone its document and drop
-- it from U's timeline, atomically.
-- KEYS: tweet:{U}:<R>, timeline:{U}, retweets:{U} (one slot: {U}).
-- ARGV: the retweet's tombstone json, its timeline member, the original's 16-byte ref member,
-- the retweet's id (decimal).
-- Returns 1 if this call undid the retweet, else 0 (already undone, or the record names
-- another retweet: nothing written then), so a counter moves once however often it is sent.
if redis.call('HGET', KEYS[3], ARGV[3]) ~= ARGV[4] then return 0 end
redis.call('HDEL', KEYS[3], ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], ARGV[1])
return 1
