-- Cache a viewer's followee set read from the graph, unless a follow changed it meanwhile.
-- KEYS: followees:{V}, following_celebs:{V}, following_ver:{V}.
-- ARGV: the version read before the graph query, ttl (s), the empty-set marker (8 zero bytes),
-- number n of followee ids, the n ids (8 big-endian bytes each), then the celebrity ids among
-- them (decimal). (At most MAX_FOLLOWING ids: within Lua's unpack limit.) The followee set also
-- holds the marker and the celebrity set 0, so an empty set still exists.
-- Returns 1 if written, 0 if the version moved (nothing written).
local current = redis.call('GET', KEYS[3]) or '0'
if current ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[4])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SADD', KEYS[1], ARGV[3], unpack(ARGV, 5, 4 + n))
redis.call('SADD', KEYS[2], 0, unpack(ARGV, 5 + n))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
