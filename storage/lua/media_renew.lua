-- Extend a processing lease, if it is still ours.
-- KEYS[1]: media:{A}:<id>.
-- ARGV: lease token, new lease end (ms).
-- Returns 1 if extended, 0 if the lease is no longer ours.
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'claim_until_ms', ARGV[2])
return 1
