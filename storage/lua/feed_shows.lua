-- Which originals a viewer's cached feed shows already (a read merging celebrity retweets).
-- KEYS: feed:{V}, feed_originals:{V} (one slot: {V}).
-- ARGV: pairs (original's 16-byte member, member of the entry that would show it).
-- Returns one 0/1 per pair: 1 if the feed shows that original at another entry.
-- include: _feed_index.lua
local found = {}
for i = 1, #ARGV, 2 do
  found[#found + 1] = shown_elsewhere(KEYS[1], KEYS[2], ARGV[i], ARGV[i + 1]) and 1 or 0
end
return found
