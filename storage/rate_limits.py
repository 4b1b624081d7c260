"""Sliding-window rate limits in Redis.

Keys (this module is their only writer): rate:<action>:<subject>, a sorted set of the times
(ms) of recent attempts, with a TTL of the window. One script checks and records atomically, so
concurrent requests cannot all slip under the limit. Kept in the feed Redis: losing them to
eviction or a restart only forgives some recent attempts.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

# KEYS: the window key.  ARGV: now (ms), window (ms), limit, a unique member.
# Returns 0 if allowed (and recorded), else the ms until the oldest attempt leaves the window.
_HIT = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_seconds: float = 0.0


class RateLimiter:
    def __init__(self, client: aioredis.Redis) -> None:
        self._hit = client.register_script(_HIT)

    async def hit(self, action: str, subject: str, limit: int, window_seconds: int) -> Verdict:
        """Record an attempt of `action` by `subject` unless that would exceed `limit` in the
        last `window_seconds`."""
        args = [int(time.time() * 1000), window_seconds * 1000, limit, secrets.token_hex(8)]
        wait_ms = int(await self._hit(keys=[f"rate:{action}:{subject}"], args=args))
        return Verdict(allowed=wait_ms == 0, retry_after_seconds=wait_ms / 1000)
