-- Replace a tweet with its tombstone and drop it from its author's timeline.
-- KEYS: tweet:{A}:<id>, timeline:{A}.
-- ARGV: tombstone json, timeline member.
-- Returns 1 if the tweet was live, else 0 (missing or already a tombstone: left as it is).
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
if string.find(raw, '"deleted":true', 1, true) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
