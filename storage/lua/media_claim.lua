-- Claim a media record for verification (one request at a time).
-- KEYS[1]: media:{A}:<id>.
-- ARGV: now (ms), claim token, claim until (ms).
-- Returns what the caller may do: 'claimed' (it now holds the claim), 'published', or why not:
-- 'missing', 'attached', 'busy' (another request holds an unexpired claim), 'expired'.
local state = redis.call('HMGET', KEYS[1], 'status', 'expires_at_ms', 'claim_until_ms')
local status, now = state[1], tonumber(ARGV[1])
if not status then return 'missing' end
if status == 'attached' then return 'attached' end
if status == 'verifying' and tonumber(state[3]) > now then return 'busy' end
if status ~= 'pending' and status ~= 'published' and status ~= 'verifying' then
  return 'missing'
end
if tonumber(state[2] or '0') <= now then return 'expired' end
if status == 'published' then return 'published' end
redis.call('HSET', KEYS[1], 'status', 'verifying', 'claim', ARGV[2], 'claim_until_ms', ARGV[3])
return 'claimed'
