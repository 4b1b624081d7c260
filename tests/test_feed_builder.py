"""The miss path's gather: exactly the newest N tweets of many authors, checked against brute
force on a real Redis."""

from __future__ import annotations

import random

import pytest

from settings import Settings
from storage.feed_builder import gather_feed, merge_newest
from storage.feeds import FeedRef
from storage.redis_clients import open_redis
from storage.tweets import Tweet, TweetStore


def test_merge_newest_interleaves_and_dedups() -> None:
    a = [FeedRef(9, 1), FeedRef(5, 1), FeedRef(1, 1)]
    b = [FeedRef(8, 2), FeedRef(5, 1), FeedRef(2, 2)]
    assert merge_newest([a, b], 4) == [FeedRef(9, 1), FeedRef(8, 2), FeedRef(5, 1), FeedRef(2, 2)]


@pytest.mark.parametrize(("authors", "limit", "seed"), [(1, 30, 1), (40, 50, 2), (300, 25, 3)])
async def test_gather_is_exact(settings: Settings, authors: int, limit: int, seed: int) -> None:
    rng = random.Random(seed)
    client = open_redis(settings.documents_redis_url, timeout_seconds=5)
    store = TweetStore(client, idempotency_ttl_seconds=60)
    everything: list[FeedRef] = []
    tweets = []
    for author in range(1, authors + 1):
        # Some authors are silent, some prolific, with bursts newer than everyone else's.
        for _ in range(rng.choice([0, 1, 3, 20, 80])):
            tweet_id = rng.randrange(10**12, 10**13)
            tweets.append(Tweet(tweet_id, author, "t", 1))
            everything.append(FeedRef(tweet_id, author))
    await store.create_many(tweets)
    try:
        expected = sorted(set(everything), reverse=True)[:limit]
        assert await gather_feed(store, list(range(1, authors + 1)), limit) == expected
    finally:
        await client.aclose()
