"""Sliding-window rate limits in Redis.

Keys (this module is their only writer): rate:<action>:<subject>, a sorted set of the times
(ms) of recent attempts, each a unique member, with a TTL of the window. One script
(lua/rate_hit.lua) checks and records atomically, so concurrent requests cannot all slip under
the limit. An attempt that turns out not to count (a log-in that succeeded) is forgiven by
removing its member. turn:<action>:<subject>: when the subject's next turn is free (ms), for
actions whose attempts are spaced out in time rather than counted (lua/take_turn.lua). Kept in
the feed Redis: losing them to eviction or a restart only forgives some recent attempts. Every
command and script here touches one key, so on a cluster each goes whole to the node of that
key's slot.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from redis.typing import EncodableT

from storage import lua
from storage.redis_clients import FeedRedis


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_seconds: float = 0.0
    recent: int = 0  # attempts in the window, this one included when it was recorded
    attempt: str = ""  # this attempt's member, for `forgive`


@dataclass(frozen=True)
class Turn:
    allowed: bool
    wait_seconds: float  # allowed: until the turn; refused: until a turn would be given


class RateLimiter:
    def __init__(self, client: FeedRedis) -> None:
        self._client = client
        self._hit = lua.register(client, "rate_hit")
        self._take_turn = lua.register(client, "take_turn")

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
        args: list[EncodableT] = [
            int(time.time() * 1000),
            window_seconds * 1000,
            limit,
            member,
            past_limit,
        ]
        wait_ms, recent = await self._hit(keys=[_key(action, subject)], args=args)
        if wait_ms:
            return Verdict(allowed=False, retry_after_seconds=wait_ms / 1000, recent=recent)
        return Verdict(allowed=True, recent=recent, attempt=member)

    async def take_turn(
        self, action: str, subject: str, spacing_seconds: float, longest_wait_seconds: float
    ) -> Turn:
        """Reserve `subject`'s next turn at `action`: no sooner than `spacing_seconds` from now
        nor from the turn reserved before it, and at most `longest_wait_seconds` away (else
        nothing is reserved). Concurrent callers queue one behind the other."""
        args: list[EncodableT] = [
            int(time.time() * 1000),
            int(spacing_seconds * 1000),
            int(longest_wait_seconds * 1000),
        ]
        wait_ms = int(await self._take_turn(keys=[f"turn:{action}:{subject}"], args=args))
        if wait_ms < 0:
            return Turn(allowed=False, wait_seconds=-wait_ms / 1000)
        return Turn(allowed=True, wait_seconds=wait_ms / 1000)


def _key(action: str, subject: str) -> str:
    return f"rate:{action}:{subject}"
