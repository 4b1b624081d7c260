"""Snowflake ids: ordering, worker leases, and refusal to run with a clock gone backwards; and
the global ids and cursors clients see (resolvers/ids.py): canonical forms only."""

from __future__ import annotations

import asyncio
import base64
import sys

import pytest
import redis.asyncio as aioredis

from resolvers.ids import (
    feed_cursor,
    like_cursor,
    parse_feed_cursor,
    parse_like_cursor,
    parse_tweet_global_id,
    tweet_global_id,
)
from social.errors import InvalidInput
from storage.feeds import FeedRef
from storage.ids import (
    EPOCH_MS,
    IdGenerationStopped,
    IdGenerator,
    id_time_ms,
)
from storage.likes import LikeCursor
from tests.servers import ROOT


class SteppedClock:
    def __init__(self, seconds: float) -> None:
        self.now = seconds

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis_client(settings) -> aioredis.Redis:
    client = aioredis.Redis.from_url(settings.documents_redis_url)
    yield client
    await client.aclose()


async def test_ids_increase_and_carry_their_time(redis_client: aioredis.Redis) -> None:
    generator = IdGenerator(redis_client)
    await generator.start()
    try:
        ids = [generator.next_id() for _ in range(20_000)]  # spans several 4,096-id milliseconds
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert all(0 < i < 2**63 for i in ids)
        assert id_time_ms(ids[0]) > EPOCH_MS
    finally:
        await generator.stop()


async def test_generators_lease_distinct_workers(redis_client: aioredis.Redis) -> None:
    generators = [IdGenerator(redis_client) for _ in range(5)]
    for generator in generators:
        await generator.start()
    try:
        assert len({g.worker for g in generators}) == 5
        ids = {g.next_id() for g in generators for _ in range(100)}
        assert len(ids) == 500
    finally:
        for generator in generators:
            await generator.stop()
    assert await redis_client.keys("idgen:worker:*") == []


async def test_clock_going_backwards_stops_generation(redis_client: aioredis.Redis) -> None:
    clock = SteppedClock(1_800_000_000.0)
    generator = IdGenerator(redis_client, clock=clock)
    await generator.start()
    try:
        first = generator.next_id()
        clock.now -= 0.005
        with pytest.raises(IdGenerationStopped):
            generator.next_id()
        clock.now += 0.010
        assert generator.next_id() > first
    finally:
        await generator.stop()
    with pytest.raises(IdGenerationStopped):
        generator.next_id()


async def test_ids_are_unique_across_four_processes(settings) -> None:
    """100,000 ids from 4 processes started together: no repeats, each process in order."""
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.id_worker", settings.documents_redis_url, "25000",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]  # fmt: skip
    outputs = [await proc.communicate() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0]
    per_process = [[int(line) for line in out.split()] for out, _ in outputs]
    assert all(ids == sorted(ids) and len(ids) == 25_000 for ids in per_process)
    assert len({i for ids in per_process for i in ids}) == 100_000


@pytest.mark.parametrize(
    "text",
    [
        "Tweet: 1:2",  # a space
        "Tweet:1 :2",
        "Tweet:+1:2",  # a sign
        "Tweet:-1:2",
        "Tweet:1_0:2",  # an underscore
        "Tweet:01:2",  # a leading zero
        "Tweet:\u0661:2",  # ARABIC-INDIC DIGIT ONE
        "Tweet:\uff11:2",  # FULLWIDTH DIGIT ONE
        "Tweet:1:2:3",
        "Tweet:1",
        "Tweet::2",
        f"Tweet:{2**63}:2",
        "User:1:2",
    ],
)
def test_global_ids_take_canonical_numbers_only(text: str) -> None:
    """Finding F: an id or cursor names its numbers one way only (malformed: BAD_USER_INPUT)."""
    token = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    with pytest.raises(InvalidInput):
        parse_tweet_global_id(token)


def test_global_ids_round_trip_and_refuse_stray_characters() -> None:
    token = tweet_global_id(12, 0)
    assert parse_tweet_global_id(token) == (12, 0)
    assert parse_feed_cursor(feed_cursor(FeedRef(7, 0))) == FeedRef(7, 0)
    assert parse_like_cursor(like_cursor(LikeCursor(5, FeedRef(1, 2)))) == LikeCursor(
        5, FeedRef(1, 2)
    )
    for bad in (f"!{token}", f"{token}=", f"{token}\n", token.replace("V", "V*", 1), ""):
        with pytest.raises(InvalidInput):
            parse_tweet_global_id(bad)
    for cursor in (feed_cursor(FeedRef(7, 0)), like_cursor(LikeCursor(5, FeedRef(1, 2)))):
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tampered = base64.urlsafe_b64encode(text.replace(":", ": ", 1).encode()).decode()
        with pytest.raises(InvalidInput):
            (parse_feed_cursor if text.startswith("feed") else parse_like_cursor)(
                tampered.rstrip("=")
            )
