"""Connections to the Redis roles. One place decides timeouts and decoding for every client."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import ClusterNode, RedisCluster

from settings import Settings

# Either kind of client: stores use only commands whose keys share one hash slot (or, for the
# fan-out scripts, one node: storage/feeds.py groups them), so the same code runs on one server
# and on a cluster.
RedisClient = aioredis.Redis | RedisCluster
DocumentsRedis = RedisClient  # the documents role (a cluster with DOCUMENTS_REDIS_CLUSTER)
FeedRedis = RedisClient  # the feed role (a cluster with FEED_REDIS_CLUSTER)
# What a Redis server that is down or too slow raises (callers answer "unavailable", not a bug).
REDIS_UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# What a call sent to the node our slot map named raises when that map is out of date (a failover
# or a slot migration): ask the cluster for its slots again and regroup.
_TOPOLOGY_ERRORS = (
    *REDIS_UNAVAILABLE,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
    redis.exceptions.SlotNotCoveredError,
)


def open_redis(url: str, *, timeout_seconds: float, cluster: bool = False) -> RedisClient:
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


def open_feed_redis(settings: Settings) -> FeedRedis:
    """The client of the feed role (FEED_REDIS_URL: feeds, followee sets, presence, rebuild
    locks, live pub/sub, fan-out stats, rate limits): one server, or with FEED_REDIS_CLUSTER a
    Redis Cluster of which the URL names any node. Every store of that role takes this client
    as an argument; the caller closes it."""
    if settings.feed_redis_cluster:
        return RedisCluster.from_url(
            settings.feed_redis_url,
            socket_timeout=settings.redis_timeout_seconds,
            socket_connect_timeout=settings.redis_timeout_seconds,
        )
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


async def group_by_node(
    cluster: RedisCluster, keys: Sequence[str]
) -> list[tuple[ClusterNode, list[int]]]:
    """The primaries that hold these keys' slots, each with the positions in `keys` of the keys
    it holds (in order), by the client's current slot map."""
    await cluster.initialize()  # learns the slot map on first use; a no-op afterwards
    groups: dict[str, tuple[ClusterNode, list[int]]] = {}
    for position, key in enumerate(keys):
        node = node_of(cluster, key)
        groups.setdefault(node.name, (node, []))[1].append(position)
    return list(groups.values())


def node_of(cluster: RedisCluster, key: str) -> ClusterNode:
    """The primary that holds `key`'s slot (or a shard channel's), by the client's slot map."""
    node = cluster.get_node_from_key(key)
    if node is None:  # only asked for a replica; typed so
        raise redis.exceptions.SlotNotCoveredError(f"no node holds the slot of {key}")
    return node


def stale_slot_map(error: BaseException) -> bool:
    """Whether a call routed by our slot map failed because the map may be out of date: the node
    is gone or moved slots (a script told of a key its node no longer holds says so too)."""
    if isinstance(error, _TOPOLOGY_ERRORS):
        return True
    return isinstance(error, redis.exceptions.ResponseError) and "non local key" in str(error)


async def refresh_slot_map(cluster: RedisCluster) -> None:
    """Ask the cluster again which node holds which slots (after `stale_slot_map` said so)."""
    await cluster.nodes_manager.initialize()
