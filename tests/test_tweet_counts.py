"""Tweet counters on a single Redis and on a real 3-master Redis Cluster: exact, never negative,
and every change published (coalesced per tweet, the last one always)."""

from __future__ import annotations

import asyncio
import time

from storage import pubsub
from storage.redis_clients import DocumentsRedis
from storage.tweet_counts import Count, TweetCounters, TweetCounts, counts_channel


async def test_counters_are_independent_exact_under_concurrency_and_never_negative(
    documents: DocumentsRedis,
) -> None:
    counters = TweetCounters(documents)
    try:
        await _bump_and_read(counters)
    finally:
        await counters.aclose()  # the publishes still waiting for their interval


async def _bump_and_read(counters: TweetCounters) -> None:
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


async def test_every_change_is_published_coalesced_and_the_last_one_always(
    documents: DocumentsRedis,
) -> None:
    listener = pubsub.listener(documents)
    await listener.subscribe(counts_channel(1, 10))
    counters = TweetCounters(documents, publish_interval_seconds=0.5)
    final = TweetCounts(replies=1, likes=180)
    received: list[tuple[float, TweetCounts]] = []

    async def read() -> None:
        while not received or received[-1][1] != final:
            message = await listener.next_message(wait=1.0)
            if message is not None:  # None: a subscription's confirmation, or nothing yet
                assert message[0] == counts_channel(1, 10)
                received.append((time.monotonic(), TweetCounts.decode(message[1])))

    reader = asyncio.create_task(read())
    try:
        for _ in range(3):  # three storms of 60 concurrent bumps, 0.2 s apart
            await asyncio.gather(*(counters.bump(1, 10, Count.LIKES, 1) for _ in range(60)))
            await asyncio.sleep(0.2)
        await counters.bump(1, 10, Count.REPLIES, 1)
        async with asyncio.timeout(5):
            await reader
    finally:
        reader.cancel()
        await counters.aclose()
        await listener.aclose()
    # 181 changes in about 0.6 s: the leading edge, then one publish per 0.5 s interval (timed
    # where they are sent: arrival times on a busy machine may bunch up).
    assert 2 <= len(received) <= 3, received
    likes = [counts.likes for _, counts in received]
    assert likes == sorted(likes), received
