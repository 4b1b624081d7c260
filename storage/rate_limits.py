"""Sliding-window rate limits in Redis.

Keys (this module is their only writer): rate:<action>:<subject>, a sorted set of the times
(ms) of recent attempts, each a unique member, with a TTL of the window. One script checks and
records atomically, so concurrent requests cannot all slip under the limit. An attempt that
turns out not to count (a log-in that succeeded) is forgiven by removing its member. Kept in the
feed Redis: losing them to eviction or a restart only forgives some recent attempts.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

# KEYS: the window key.  ARGV: now (ms), window (ms), limit, a unique member, and "refuse" or
# "keep": past the limit, refuse the attempt, or record it and keep only the newest `limit`.
# Returns {ms until the oldest attempt leaves the window (0: recorded), attempts in the window}.
_HIT = """
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
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_seconds: float = 0.0
    recent: int = 0  # attempts in the window, this one included when it was recorded
    attempt: str = ""  # this attempt's member, for `forgive`


class RateLimiter:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._hit = client.register_script(_HIT)

    async def hit(self, action: str, subject: str, limit: int, window_seconds: int) -> Verdict:
        """Record an attempt of `action` by `subject` unless that would exceed `limit` in the
        last `window_seconds`."""
        return await self._run(action, subject, limit, window_seconds, "refuse")

    async def record(self, action: str, subject: str, keep: int, window_seconds: int) -> Verdict:
        """Record an attempt whatever the count (never refused); only the newest `keep` are
        kept, so `recent` is at most `keep`."""
        return await self._run(action, subject, keep, window_seconds, "keep")

    async def forgive(self, action: str, subject: str, attempt: str) -> None:
        """The attempt no longer counts (gone already: nothing happens)."""
        await self._client.zrem(_key(action, subject), attempt)

    async def _run(
        self, action: str, subject: str, limit: int, window_seconds: int, past_limit: str
    ) -> Verdict:
        member = secrets.token_hex(8)
        args = [int(time.time() * 1000), window_seconds * 1000, limit, member, past_limit]
        wait_ms, recent = await self._hit(keys=[_key(action, subject)], args=args)
        if wait_ms:
            return Verdict(allowed=False, retry_after_seconds=wait_ms / 1000, recent=recent)
        return Verdict(allowed=True, recent=recent, attempt=member)


def _key(action: str, subject: str) -> str:
    return f"rate:{action}:{subject}"
