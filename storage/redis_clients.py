"""Connections to the Redis roles. One place decides timeouts and decoding for every client."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis._parsers import AsyncCommandsParser
from redis.asyncio.cluster import ClusterNode, RedisCluster

from settings import Settings

# Either kind of client: stores use only commands whose keys share one hash slot (or, for the
# fan-out scripts, one node: storage/feeds.py groups them), so the same code runs on one server
# and on a cluster.
RedisClient = aioredis.Redis | RedisCluster
DocumentsRedis = RedisClient  # the documents role (a cluster with DOCUMENTS_REDIS_CLUSTER)
FeedRedis = RedisClient  # the feed role (a cluster with FEED_REDIS_CLUSTER)
# What a Redis server that is down or too slow raises (callers answer "unavailable", not a bug).
# On a cluster, also what redis-py raises once its own retries give up on a shard that is between
# masters: CLUSTERDOWN (no master serves the slot yet, or the node is cut off from the majority),
# TRYAGAIN (a slot mid-migration), or no node known for the slot. Those were answered as bugs (500).
REDIS_UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
)
# What a call sent to the node our slot map named raises when that map is out of date (a failover
# or a slot migration): ask the cluster for its slots again and regroup.
_TOPOLOGY_ERRORS = (
    *REDIS_UNAVAILABLE,
    redis.exceptions.MovedError,
    redis.exceptions.AskError,
)


class _CommandTableOnce(AsyncCommandsParser):
    """The COMMAND table (which commands take which keys), fetched once: redis-py fetches it
    again with every reload of the slot map, always from the first master it knows, so while
    that master is dead (until its replica is promoted) every reload failed, and so did every
    request that needed one, whatever shard it was for. The table does not change with the
    topology."""

    async def initialize(self, node: ClusterNode | None = None) -> None:
        if node is not None:
            self.node = node
        if not self.commands:
            await super().initialize()


class _FailoverSafeCluster(RedisCluster):
    """redis-py's cluster client (8.1) made to ride out a failover without failing the requests
    for the healthy shards:

    - redis-py resets after a ConnectionError or CLUSTERDOWN in a pipeline, a CLUSTERDOWN on a
      command, and every fifth MOVED, by calling `aclose()`, which disconnects every connection
      to every node, those other tasks are using included (or about to: one a task has just
      taken from the pool). During a master failover each request to the dead shard (any
      pipeline: the token check is one) did that, and requests to the healthy shards failed
      with it: a ConnectionError, or an AttributeError or uvloop RuntimeError on the closed
      transport (a 500). `aclose()` here closes only what nobody is using, the way redis-py
      itself recycles a connection after a topology change: an idle connection is taken out
      of the pool while it closes, one in use is closed when it is released; and the next
      call reloads the slot map. When the owner closes the client nothing is in use, so that
      is still a full close.
    - the COMMAND table is fetched once (`_CommandTableOnce`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands_parser = _CommandTableOnce()

    async def aclose(self) -> None:
        self._initialize = True
        manager = self.nodes_manager
        nodes = {
            id(node): node
            for node in [*manager.startup_nodes.values(), *manager.nodes_cache.values()]
        }
        for node in nodes.values():
            node.update_active_connections_for_reconnect()  # closed by release(), after use
            idle = list(node._free)
            node._free.clear()  # not to be taken while closing
            await asyncio.gather(*(c.disconnect() for c in idle), return_exceptions=True)
            node._free.extend(idle)


def open_redis(url: str, *, timeout_seconds: float, cluster: bool = False) -> RedisClient:
    """A pooled async client returning bytes that gives up on a dead server after the timeout.
    With `cluster`, `url` names any node; the client discovers the others and routes by slot."""
    if cluster:
        return _FailoverSafeCluster.from_url(
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
        return _FailoverSafeCluster.from_url(
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


async def replication_lag(client: DocumentsRedis) -> dict[str, int]:
    """Per master ("host:port"), the replication stream bytes its slowest replica has not
    processed yet (`master_repl_offset` minus the replica's `offset` in INFO replication);
    -1 for a master without a replica. On a cluster, every master; on one server, that one."""
    if isinstance(client, RedisCluster):
        masters = client.get_primaries()
        infos = [await client.info("replication", target_nodes=node) for node in masters]
        names = [f"{node.host}:{node.port}" for node in masters]
    else:
        infos = [await client.info("replication")]
        kwargs = client.connection_pool.connection_kwargs
        names = [f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"]
    return {name: _slowest_replica_lag(info) for name, info in zip(names, infos, strict=True)}


def _slowest_replica_lag(info: dict[str, object]) -> int:
    offsets = [
        int(replica["offset"])
        for key, replica in info.items()
        if key.startswith("slave") and isinstance(replica, dict) and "offset" in replica
    ]
    if not offsets:
        return -1
    return max(0, int(str(info.get("master_repl_offset", 0))) - min(offsets))
