-- Take one of a user's live-connection slots, dropping slots whose heartbeat lapsed.
-- KEYS[1]: live_slots:{V}.
-- ARGV: now (ms), lapse (ms), max slots, slot id.
-- Returns 1 if the slot was taken, 0 if all are held.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1] + ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
