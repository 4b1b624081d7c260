-- Mark a media record purging (so nothing can claim or attach it) before its objects go.
-- KEYS: media:{A}:<id>, uploads:{A}.
-- ARGV: media id, '1' to spare attached media.
-- Returns the record's public object key ('' if none or no record), or false (nil) for
-- attached media that is spared.
local status = redis.call('HGET', KEYS[1], 'status')
redis.call('HDEL', KEYS[2], ARGV[1])
if not status then return '' end
if status == 'attached' and ARGV[2] == '1' then return false end
redis.call('HSET', KEYS[1], 'status', 'purging')
return redis.call('HGET', KEYS[1], 'public_key') or ''
