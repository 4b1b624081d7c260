-- Queue an uploaded video for processing (the client says its upload is complete).
-- KEYS[1]: media:{A}:<id>.
-- ARGV: now (ms).
-- Returns 'queued' when this call queued it, 'missing', 'not_video', 'expired', or the status
-- the record already has (a repeated completion changes nothing).
local state = redis.call('HMGET', KEYS[1], 'status', 'kind', 'expires_at_ms')
local status = state[1]
if not status or status == 'purging' then return 'missing' end
if state[2] ~= 'video' then return 'not_video' end
if status ~= 'pending' then return status end
if tonumber(state[3] or '0') <= tonumber(ARGV[1]) then return 'expired' end
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', 0)
return 'queued'
