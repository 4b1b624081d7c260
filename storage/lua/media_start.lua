-- Record a pending upload if the owner's unattached uploads leave room under the quota.
-- KEYS: media:{A}:<id>, uploads:{A}.
-- ARGV: media id, content type, declared bytes, now (ms), expires at (ms), quota (bytes),
-- record key prefix ('media:{A}:'), then more field/value pairs for the record (a video's kind,
-- its multipart upload).
-- Drops index entries of records no longer live (attached, expired, purged).
-- Returns -1 when recorded, else the ms until the oldest counted upload expires.
local now, quota = tonumber(ARGV[4]), tonumber(ARGV[6])
local held, oldest = 0, nil
local index = redis.call('HGETALL', KEYS[2])
for i = 1, #index, 2 do
  local state = redis.call('HMGET', ARGV[7] .. index[i], 'status', 'expires_at_ms')
  local live = state[1] == 'pending' or state[1] == 'verifying' or state[1] == 'published'
    or state[1] == 'queued' or state[1] == 'processing'
  local expires = tonumber(state[2] or '0')
  if live and expires > now then
    held = held + tonumber(index[i + 1])
    if oldest == nil or expires < oldest then oldest = expires end
  else
    redis.call('HDEL', KEYS[2], index[i])
  end
end
if held + tonumber(ARGV[3]) > quota then return math.max(1, (oldest or now) - now) end
redis.call('HSET', KEYS[1], 'status', 'pending', 'content_type', ARGV[2],
  'declared_bytes', ARGV[3], 'created_at_ms', ARGV[4], 'expires_at_ms', ARGV[5])
if #ARGV > 7 then redis.call('HSET', KEYS[1], unpack(ARGV, 8)) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return -1
