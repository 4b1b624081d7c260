-- Remove every entry by one author (an unfollow's clean-up), unless the viewer's follow state
-- changed since.
-- KEYS: feed:{V}, following_ver:{V}.
-- ARGV: the version read before the decision, the author id as 8 big-endian bytes.
-- The markers have tweet id 0: they stay.
-- Returns how many were removed, or -1 (nothing removed) if the version moved.
-- include: _if_unchanged.lua
local removed = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(member, 9) == ARGV[2] and string.sub(member, 1, 8) ~= string.rep('\0', 8) then
    removed = removed + redis.call('ZREM', KEYS[1], member)
  end
end
return removed
