"""The feed-rebuild lock on a real Redis: one holder at a time, released only by its token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from settings import Settings
from storage.rebuild_locks import REBUILD_LOCK_MS, RebuildLocks, lock_key
from storage.redis_clients import open_feed_redis


@pytest.fixture
async def feed_redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = open_feed_redis(settings)
    yield client
    await client.aclose()


async def test_one_holder_until_it_unlocks(feed_redis: aioredis.Redis) -> None:
    locks = RebuildLocks(feed_redis)
    assert await locks.try_lock(7, "first")
    assert not await locks.try_lock(7, "second")
    assert 0 < await feed_redis.pttl(lock_key(7)) <= REBUILD_LOCK_MS
    assert await locks.unlock(7, "first")
    assert await locks.try_lock(7, "second")


async def test_unlock_with_another_token_leaves_that_lock(feed_redis: aioredis.Redis) -> None:
    """A holder whose lock expired mid-rebuild must not release the lock another process took
    since."""
    locks = RebuildLocks(feed_redis)
    assert await locks.try_lock(7, "slow")
    await feed_redis.delete(lock_key(7))  # the slow holder's lock lapses...
    assert await locks.try_lock(7, "next")  # ...and another process takes it
    assert not await locks.unlock(7, "slow")  # the slow holder finishes late
    assert await feed_redis.get(lock_key(7)) == b"next"
    assert not await locks.try_lock(7, "third")
    assert not await locks.unlock(8, "next")  # no lock at all: nothing to release
