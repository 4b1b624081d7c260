"""Connections to the Redis roles. One place decides timeouts and decoding for every client."""

from __future__ import annotations

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import RedisCluster

from settings import Settings

# Either kind of client: stores use only commands whose keys share one hash slot, so the same
# code runs on one server and on a cluster.
DocumentsRedis = aioredis.Redis | RedisCluster
# What a Redis server that is down or too slow raises (callers answer "unavailable", not a bug).
REDIS_UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def open_redis(url: str, *, timeout_seconds: float, cluster: bool = False) -> DocumentsRedis:
    """A pooled async client returning bytes that gives up on a dead server after the timeout.
    With `cluster`, `url` names any node; the client discovers the others and routes by slot."""
    if cluster:
        return RedisCluster.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
        )
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=30,
    )


def open_feed_redis(settings: Settings) -> aioredis.Redis:
    """The client of the feed role (FEED_REDIS_URL: feeds, followee sets, presence, rebuild
    locks, live pub/sub, fan-out stats, rate limits), always one server. Every store of that
    role takes this client as an argument; the caller closes it."""
    return aioredis.Redis.from_url(
        settings.feed_redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
    )


def reply_bytes(reply: object) -> bytes:
    """A string reply of a client opened here: bytes, since none of them decodes responses.
    redis-py types replies `bytes | str` (for clients with decode_responses); this narrows one,
    failing loudly if a decoding client ever got here."""
    if isinstance(reply, bytes):
        return reply
    raise TypeError(f"expected a bytes reply from Redis, got {type(reply).__name__}")


async def mget(client: DocumentsRedis, keys: list[str]) -> list[bytes | None]:
    """GET many keys in order: one MGET on a single server; on a cluster, keys in different
    slots are grouped per node and pipelined (one round trip per node)."""
    if isinstance(client, RedisCluster):
        return await client.mget_nonatomic(keys)
    return [None if raw is None else reply_bytes(raw) for raw in await client.mget(keys)]
