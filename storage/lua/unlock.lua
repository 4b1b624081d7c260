-- Release a lock or lease only if it is still ours (compare and delete): a holder whose lock
-- expired must not delete the lock another process took since.
-- KEYS[1]: the lock key (lock:feed:{V}, idgen:worker:<n>).
-- ARGV[1]: the token the holder stored when it took the lock.
-- Returns 1 if deleted, 0 if the key is gone or holds another token.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
