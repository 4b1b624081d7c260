"""The per-process cache of celebrities' recent tweets, merged into feeds at read time.

Celebrities' tweets are not pushed into their followers' feeds (millions of writes per tweet);
each API process keeps their newest ids instead, refreshed every CELEBRITY_REFRESH_SECONDS for the
celebrities its readers asked for recently, and reports new tweets to a listener (live updates).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from storage.tweets import TweetStore

KEEP_UNUSED_SECONDS = 600  # a celebrity nobody read for this long is no longer refreshed

log = logging.getLogger(__name__)

NewTweets = Callable[[int, list[int]], Awaitable[None]]


class CelebrityTimelines:
    def __init__(self, tweets: TweetStore, *, per_celebrity: int, refresh_seconds: float) -> None:
        self._tweets = tweets
        self._per_celebrity = per_celebrity
        self._refresh_seconds = refresh_seconds
        self._recent: dict[int, list[int]] = {}  # celebrity -> newest tweet ids, newest first
        self._fetched_at: dict[int, float] = {}
        self._wanted_at: dict[int, float] = {}

    async def recent(self, celebrity_ids: list[int]) -> dict[int, list[int]]:
        """Newest tweet ids of each; fetched now (one round trip per shard) only for those not
        already cached fresh."""
        now = time.monotonic()
        for celebrity in celebrity_ids:
            self._wanted_at[celebrity] = now
        stale = [
            c
            for c in celebrity_ids
            if now - self._fetched_at.get(c, float("-inf")) > 2 * self._refresh_seconds
        ]
        if stale:
            await self._fetch(stale)
        return {c: self._recent.get(c, []) for c in celebrity_ids}

    async def _fetch(self, celebrity_ids: list[int]) -> dict[int, list[int]]:
        """Fetch and store; returns the ids that are new since the previous fetch."""
        fetched = await self._tweets.recent_tweet_ids(celebrity_ids, self._per_celebrity)
        now = time.monotonic()
        fresh: dict[int, list[int]] = {}
        for celebrity, ids in fetched.items():
            known = self._recent.get(celebrity)
            if known is not None:
                newest_known = known[0] if known else 0
                fresh[celebrity] = [i for i in ids if i > newest_known]
            self._recent[celebrity] = ids
            self._fetched_at[celebrity] = now
        return fresh

    async def refresh_forever(self, on_new: NewTweets) -> None:
        """Every refresh interval, re-read the celebrities in use and report their new tweets."""
        while True:
            await asyncio.sleep(self._refresh_seconds)
            cutoff = time.monotonic() - KEEP_UNUSED_SECONDS
            for celebrity in [c for c, t in self._wanted_at.items() if t < cutoff]:
                for table in (self._wanted_at, self._recent, self._fetched_at):
                    table.pop(celebrity, None)
            if not self._wanted_at:
                continue
            try:
                fresh = await self._fetch(list(self._wanted_at))
                for celebrity, ids in fresh.items():
                    if ids:
                        await on_new(celebrity, ids)
            except Exception:  # keep refreshing; a Redis blip must not end the loop
                log.warning("celebrity timeline refresh failed", exc_info=True)

    def follow_interest(self, celebrity_ids: list[int]) -> None:
        """Keep refreshing these (a live subscriber follows them) even without reads."""
        now = time.monotonic()
        for celebrity in celebrity_ids:
            self._wanted_at[celebrity] = now
