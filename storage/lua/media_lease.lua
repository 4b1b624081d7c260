-- Take the processing lease of a queued video, or of one whose last holder stopped renewing
-- its lease (a worker that died mid-processing), counting attempts.
-- KEYS[1]: media:{A}:<id>.
-- ARGV: now (ms), lease token, lease until (ms), max attempts, the reason recorded when the
-- attempts are used up.
-- Returns 'claimed' (the caller holds the lease), 'busy' (a live lease is held), 'exhausted'
-- (this would be one attempt too many: the record is now 'failed'), or the record's status
-- ('published', 'failed', 'attached', 'pending', 'purging'; 'missing' without a record):
-- nothing to do.
local state = redis.call('HMGET', KEYS[1], 'status', 'claim_until_ms', 'attempts')
local status, now = state[1], tonumber(ARGV[1])
if not status then return 'missing' end
local stale = status == 'processing' and tonumber(state[2] or '0') <= now
if status ~= 'queued' and not stale then
  if status == 'processing' then return 'busy' end
  return status
end
local attempts = tonumber(state[3] or '0') + 1
if attempts > tonumber(ARGV[4]) then
  redis.call('HDEL', KEYS[1], 'claim', 'claim_until_ms')
  redis.call('HSET', KEYS[1], 'status', 'failed', 'reason', ARGV[5], 'attempts', attempts - 1)
  return 'exhausted'
end
redis.call('HSET', KEYS[1], 'status', 'processing', 'claim', ARGV[2], 'claim_until_ms', ARGV[3],
  'attempts', attempts)
return 'claimed'
