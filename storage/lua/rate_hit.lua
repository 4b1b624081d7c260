-- Check and record one attempt in a sliding window, atomically.
-- KEYS[1]: rate:<action>:<subject>, a sorted set of attempt times (ms).
-- ARGV: now (ms), window (ms), limit, a unique member, and 'refuse' or 'keep': past the limit,
-- refuse the attempt, or record it and keep only the newest `limit`.
-- Returns {ms until the oldest attempt leaves the window (0: recorded), attempts in the window}.
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  if ARGV[5] == 'refuse' then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {math.max(1, tonumber(oldest[2]) + window - now), count}
  end
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, count - limit)
  count = limit - 1
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return {0, count + 1}
