-- Queue an uploaded video for processing (the client says its upload is complete).
-- KEYS[1]: media:{A}:<id>.
-- ARGV: now (ms), resend after (ms: the processing lease).
-- Returns 'send' when this call queued it (the caller sends the job), 'resend' when it was queued (or its processing
-- lease ran out) and no job was sent for that long (the caller sends one again: a lost
-- message is recovered, while repeated completions send at most one job per lease period),
-- 'missing', 'not_video', 'expired', or the status the record already has (a repeated
-- completion changes nothing).
local state = redis.call('HMGET', KEYS[1], 'status', 'kind', 'expires_at_ms', 'sent_at_ms',
  'claim_until_ms')
local status, now = state[1], tonumber(ARGV[1])
if not status or status == 'purging' then return 'missing' end
if state[2] ~= 'video' then return 'not_video' end
if status == 'pending' then
  if tonumber(state[3] or '0') <= now then return 'expired' end
  redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', 0, 'sent_at_ms', now)
  return 'send'
end
local stalled = status == 'queued'
  or (status == 'processing' and tonumber(state[5] or '0') <= now)
if stalled and tonumber(state[4] or '0') + tonumber(ARGV[2]) <= now then
  redis.call('HSET', KEYS[1], 'sent_at_ms', now)
  return 'resend'
end
return status
