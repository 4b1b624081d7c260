-- Start a rebuild of a viewer's feed (the caller holds the viewer's rebuild lock).
-- KEYS: feed:{V}, feed_originals:{V} (one slot: {V}).
-- ARGV: BUILDING, ttl (s).
-- If the feed or its whole index is missing (expired, evicted, or an index of an older
-- format), both start afresh; otherwise what is there stays (pushes that landed in a feed
-- being built). Then the feed exists (BUILDING), so pushes made while the rebuild gathers
-- land in it, and its index is whole ('v').
-- Returns 1.
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[2], 'v') == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
end
redis.call('ZADD', KEYS[1], 0, ARGV[1])
redis.call('HSET', KEYS[2], 'v', '2')
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
