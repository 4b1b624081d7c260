-- Reserve a subject's next turn at an action, turns at least a spacing apart, the queue bounded.
-- KEYS[1]: turn:<action>:<subject>, the time (ms) from which the next turn is free.
-- ARGV: now (ms), spacing (ms): this turn starts no sooner than now + spacing and the next no
-- sooner than this one + spacing, and the longest wait (ms) a turn may be given.
-- Returns ms to wait for the turn, or -(ms until a turn within the longest wait is free) when
-- the queue is full (nothing is reserved then).
local now, spacing, longest = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local free_from = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(now + spacing, free_from)
if start - now > longest then
  return -math.max(1, start - now - longest)
end
if spacing > 0 then  -- without spacing the next turn is free as early as this one: nothing to keep
  redis.call('SET', KEYS[1], start + spacing, 'PX', start + spacing - now + 1000)
end
return start - now
