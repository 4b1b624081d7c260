-- Change one engagement counter of a tweet (or none) and publish the tweet's counts.
-- KEYS[1]: counts:{A}:<T> (storage/tweet_counts.py).
-- ARGV: the counter's BITFIELD offset ('#0'..'#3'), delta (0: change nothing, only publish),
-- the channel (counts_changed:{A}:<T>, the key's slot), the publish command ('PUBLISH' on one
-- server, 'SPUBLISH' on a cluster), and the deletion mark ('' for a counts message).
-- Publishes the whole counts string (16 bytes or fewer: missing counters read as zero) after
-- the change, so what subscribers get is never older than this change; with a deletion mark,
-- the counts padded to 16 bytes and then the mark (the tweet was deleted: its last message).
-- Returns the counter's new value (0 when delta is 0).
local value = 0
if tonumber(ARGV[2]) ~= 0 then
  value = redis.call('BITFIELD', KEYS[1], 'OVERFLOW', 'SAT', 'INCRBY', 'u32', ARGV[1], ARGV[2])[1]
end
local message = redis.call('GET', KEYS[1]) or ''
if ARGV[5] ~= '' then message = message .. string.rep('\0', 16 - #message) .. ARGV[5] end
redis.call(ARGV[4], ARGV[3], message)
return value
