"""Tweet counters on a single Redis and on a real 3-master Redis Cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from storage.redis_clients import DocumentsRedis, open_redis
from storage.tweet_counts import Count, TweetCounters, TweetCounts
from tests.conftest import RedisServer


@pytest.fixture(params=["single", "cluster"])
async def documents(request: pytest.FixtureRequest) -> AsyncIterator[DocumentsRedis]:
    if request.param == "single":
        server: RedisServer = request.getfixturevalue("data_redis")
        server.client().flushall()
        client = open_redis(server.url, timeout_seconds=5)
    else:
        nodes: list[RedisServer] = request.getfixturevalue("redis_cluster")
        for node in nodes:
            node.client().flushall()
        client = open_redis(nodes[0].url, timeout_seconds=5, cluster=True)
    yield client
    await client.aclose()


async def test_counters_are_independent_exact_under_concurrency_and_never_negative(
    documents: DocumentsRedis,
) -> None:
    counters = TweetCounters(documents)
    assert await counters.read([(1, 10)]) == [TweetCounts()]
    for _ in range(4):  # concurrent within each round, as many as a client pool allows
        await asyncio.gather(*(counters.bump(1, 10, Count.LIKES, 1) for _ in range(50)))
    await asyncio.gather(*(counters.bump(1, 10, Count.LIKES, -1) for _ in range(50)))
    assert await counters.bump(1, 10, Count.REPLIES, 2) == 2
    assert await counters.bump(2, 20, Count.QUOTES, -1) == 0  # saturates at zero
    assert await counters.bump(2, 20, Count.RETWEETS, 1) == 1
    assert await counters.read([(1, 10), (2, 20), (3, 30)]) == [
        TweetCounts(replies=2, likes=150),
        TweetCounts(retweets=1),
        TweetCounts(),
    ]
