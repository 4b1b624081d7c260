-- Snippet (not a script): the guard of removals decided from a viewer's follow state.
-- They run only if that state has not changed since: a follow bumps following_ver before it
-- merges entries in, so a removal judged before a re-follow can never take the entries that
-- re-follow merged. The including script must take KEYS[2] = following_ver:{V} and
-- ARGV[1] = the version read before the decision; it returns -1 (and does nothing) if the
-- version moved.
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return -1 end
