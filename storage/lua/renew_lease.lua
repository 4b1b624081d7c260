-- Extend a lease only if it is still ours.
-- KEYS[1]: the lease key (idgen:worker:<n>).
-- ARGV: the holder's token, the new lifetime (ms).
-- Returns 1 if extended, 0 if the lease is gone or held by another token.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
