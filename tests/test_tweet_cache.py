"""The per-process hot-tweet cache: LRU/TTL behaviour, and invalidation across API processes."""

from __future__ import annotations

import asyncio

import httpx

from settings import Settings
from storage.tweet_cache import TweetCache
from storage.tweets import Tweet
from tests.gql import DELETE_TWEET, TWEET, gql, sign_up, tweet
from tests.servers import serve_api


def make(tweet_id: int) -> Tweet:
    return Tweet(tweet_id=tweet_id, author_id=1, text="t", created_at_ms=1)


def test_lru_keeps_the_most_recent_and_expires() -> None:
    cache = TweetCache(max_entries=2, ttl_seconds=60)
    for tweet_id in (1, 2):
        cache.put(make(tweet_id), cache.now())
    assert cache.get((1, 1)) is not None  # 1 is now the most recent
    cache.put(make(3), cache.now())
    assert cache.get((1, 2)) is None and cache.get((1, 1)) and cache.get((1, 3))
    expired = TweetCache(max_entries=2, ttl_seconds=0)
    expired.put(make(1), expired.now())
    assert expired.get((1, 1)) is None


def test_a_read_older_than_an_invalidation_is_not_cached() -> None:
    cache = TweetCache(max_entries=10, ttl_seconds=60)
    read_started = cache.now()
    cache.evict((1, 1))  # the tweet was deleted while the read was in flight
    cache.put(make(1), read_started)
    assert cache.get((1, 1)) is None
    cache.put(make(1), cache.now())
    assert cache.get((1, 1)) is not None


async def test_delete_in_one_process_evicts_in_another(settings: Settings) -> None:
    with serve_api(settings) as url_a, serve_api(settings) as url_b:
        async with (
            httpx.AsyncClient(base_url=url_a, timeout=30) as a,
            httpx.AsyncClient(base_url=url_b, timeout=30) as b,
        ):
            token, _ = await sign_up(a, "alice")
            created = await tweet(a, token, "soon gone")
            assert (await gql(b, TWEET, {"id": created["id"]}))["tweet"] is not None  # cached in B
            await gql(a, DELETE_TWEET, {"id": created["id"]}, token=token)
            async with asyncio.timeout(5):  # pub/sub delivery: milliseconds
                while (await gql(b, TWEET, {"id": created["id"]}))["tweet"] is not None:
                    await asyncio.sleep(0.01)
