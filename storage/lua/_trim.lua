-- Snippet (not a script): included by scripts that add to a feed.
-- Defines trim(key, cap): removes the oldest entries of feed `key` beyond `cap`, keeping the
-- marker members, which sort below every entry. The including script must pass the markers as
-- ARGV[1] (COMPLETE) and ARGV[2] (BUILDING).
local function trim(key, cap)
  local markers = 0
  if redis.call('ZSCORE', key, ARGV[1]) then markers = markers + 1 end
  if redis.call('ZSCORE', key, ARGV[2]) then markers = markers + 1 end
  local excess = redis.call('ZCARD', key) - markers - cap
  if excess > 0 then redis.call('ZREMRANGEBYRANK', key, markers, markers + excess - 1) end
end
