-- Remove entries a read found invisible, unless the viewer's follow state changed since.
-- KEYS: feed:{V}, following_ver:{V}, feed_originals:{V} (one slot: {V}).
-- ARGV: the version read before the decision, then the members to remove.
-- Each leaves the feed index too; where it was the entry showing its original, the next entry
-- of that original shows it from now on (_feed_index.lua).
-- Returns those entries that show an original from now on (the read may have passed over
-- them), or -1 (nothing removed) if the version moved.
-- include: _if_unchanged.lua
-- include: _feed_index.lua
local promoted = {}
for i = 2, #ARGV do
  local _, now = remove_entry(KEYS[1], KEYS[3], ARGV[i])
  if now then promoted[#promoted + 1] = now end
end
return promoted
