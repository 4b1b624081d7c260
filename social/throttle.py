"""Rate limits as the domain applies them: one call per limited action, at the point in the
action where the attempt counts (an idempotent repeat of a tweet does not; a log-in is counted
before its password is checked and forgiven if it succeeds)."""

from __future__ import annotations

import asyncio
import math

from settings import parse_rate
from social.errors import TooManyAttempts
from storage.rate_limits import RateLimiter, Verdict


class Throttle:
    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    async def charge(self, action: str, subject: object, rate: str) -> Verdict:
        """Count one `action` by `subject` against `rate` ("N/S"), or TooManyAttempts with
        `retryAfter` (whole seconds). The verdict names the attempt, to forgive it."""
        limit, window = parse_rate(rate)
        verdict = await self._limiter.hit(action, str(subject), limit, window)
        if not verdict.allowed:
            retry_after = math.ceil(verdict.retry_after_seconds)
            raise TooManyAttempts(
                f"too many attempts ({action}); retry in {retry_after} s", retryAfter=retry_after
            )
        return verdict

    async def record(self, action: str, subject: str, keep: int, window_seconds: int) -> Verdict:
        """Count an attempt without refusing it (the caller decides what the count means)."""
        return await self._limiter.record(action, subject, keep, window_seconds)

    async def take_turn(
        self, action: str, subject: str, spacing_seconds: float, longest_wait_seconds: float
    ) -> None:
        """Wait for `subject`'s turn at `action`, turns `spacing_seconds` apart whoever asks
        and from wherever; TooManyAttempts when the queue already reaches past
        `longest_wait_seconds`."""
        turn = await self._limiter.take_turn(action, subject, spacing_seconds, longest_wait_seconds)
        if not turn.allowed:
            retry_after = math.ceil(turn.wait_seconds)
            raise TooManyAttempts(
                f"too many attempts ({action}); retry in {retry_after} s", retryAfter=retry_after
            )
        await asyncio.sleep(turn.wait_seconds)

    async def forgive(self, action: str, subject: str, attempt: str) -> None:
        """Take back an attempt counted earlier (it succeeded)."""
        await self._limiter.forgive(action, subject, attempt)
