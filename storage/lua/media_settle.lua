-- End a claim: set fields and drop the claim, if the claim is still ours.
-- KEYS[1]: media:{A}:<id>.
-- ARGV: claim token, then field/value pairs to set.
-- Returns 1 if settled, 0 if the claim is no longer ours (nothing written).
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'claim', 'claim_until_ms')
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
