-- Remove entries a read found invisible, unless the viewer's follow state changed since.
-- KEYS: feed:{V}, following_ver:{V}.
-- ARGV: the version read before the decision, then the members to remove.
-- Returns how many were removed, or -1 (nothing removed) if the version moved.
-- include: _if_unchanged.lua
return redis.call('ZREM', KEYS[1], unpack(ARGV, 2))
