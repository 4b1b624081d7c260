-- Remove every entry by one author (an unfollow's clean-up), unless the viewer's follow state
-- changed since.
-- KEYS: feed:{V}, following_ver:{V}, feed_originals:{V} (one slot: {V}).
-- ARGV: the version read before the decision, the author id as 8 big-endian bytes.
-- The markers have tweet id 0: they stay. Each entry leaves the feed index too; where it was the
-- entry showing its original, the next entry of that original shows it (_feed_index.lua): a
-- followee's retweet of the unfollowed author's tweet, or another followee's retweet of what
-- the unfollowed author retweeted.
-- Returns how many were removed, or -1 (nothing removed) if the version moved.
-- include: _if_unchanged.lua
-- include: _feed_index.lua
local removed = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(member, 9) == ARGV[2] and string.sub(member, 1, 8) ~= string.rep('\0', 8) then
    if remove_entry(KEYS[1], KEYS[3], member) then removed = removed + 1 end
  end
end
return removed
