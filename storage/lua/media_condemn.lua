-- Mark a media record purging (so nothing can claim or attach it) before its objects go.
-- KEYS: media:{A}:<id>, uploads:{A}, video_uploads:{A}.
-- ARGV: media id, '1' to spare attached media.
-- Returns {public object key, poster object key, multipart upload id} ('' for each that the
-- record lacks, all '' without a record), or false (nil) for attached media that is spared.
local status = redis.call('HGET', KEYS[1], 'status')
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
if not status then return {'', '', ''} end
if status == 'attached' and ARGV[2] == '1' then return false end
redis.call('HSET', KEYS[1], 'status', 'purging')
local found = redis.call('HMGET', KEYS[1], 'public_key', 'poster_key', 'upload_id')
return {found[1] or '', found[2] or '', found[3] or ''}
