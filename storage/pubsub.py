"""Publish and subscribe on one Redis role, on a single server or on a Redis Cluster.

On one server: PUBLISH and SUBSCRIBE, and a listener is one connection. On a cluster: sharded
pub/sub (SPUBLISH, SSUBSCRIBE). A shard channel lives on the node that owns its hash slot, so a
message never crosses the cluster bus to every node, and a script may publish on a channel of
the node it runs on; a listener then holds one connection per node owning one of its channels.
Channel names choose their slot with a hash tag: `live:{V}` lives with viewer V's keys, fixed
channels carry a fixed tag (`live:{hub}`, `tweets:{invalidate}`).

Delivery is at most once: a dropped connection loses what was published meanwhile. A listener
remembers its channels; after an error, `resubscribe` connects again (on a cluster, to the nodes
that own the channels now: a failover or a slot migration moves them) and subscribes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from storage.redis_clients import RedisClient, node_of, refresh_slot_map

Message = tuple[str, bytes]  # channel, data
RECONNECT_DELAY_SECONDS = 1.0

log = logging.getLogger(__name__)


def publish_command(client: RedisClient) -> str:
    """The command that publishes on this client's role, for scripts that publish."""
    return "SPUBLISH" if isinstance(client, RedisCluster) else "PUBLISH"


async def publish(client: RedisClient, channel: str, data: str) -> None:
    if isinstance(client, RedisCluster):
        await client.spublish(channel, data)  # routed to the node owning the channel's slot
    else:
        await client.publish(channel, data)


class Listener(Protocol):
    """One process's subscriptions on a role. Not safe for two readers at once: one task reads
    (`next_message`, and `resubscribe` after it raised); any task may (un)subscribe."""

    async def subscribe(self, *channels: str) -> None: ...

    async def unsubscribe(self, *channels: str) -> None: ...

    async def next_message(self, wait: float | None) -> Message | None:
        """The next message on a subscribed channel, or None if none came within `wait`
        seconds (None: wait for one). Raises if a connection was lost: call `resubscribe`."""
        ...

    async def resubscribe(self) -> None:
        """Connect again and subscribe to every channel subscribed and not unsubscribed."""
        ...

    async def aclose(self) -> None: ...


def listener(client: RedisClient) -> Listener:
    if isinstance(client, RedisCluster):
        return _ShardedListener(client)
    return _ServerListener(client)


class _ServerListener:
    """One connection to one server: SUBSCRIBE."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._pubsub = client.pubsub()
        self._channels: set[str] = set()

    async def subscribe(self, *channels: str) -> None:
        self._channels.update(channels)
        await self._pubsub.subscribe(*channels)

    async def unsubscribe(self, *channels: str) -> None:
        self._channels.difference_update(channels)
        await self._pubsub.unsubscribe(*channels)

    async def next_message(self, wait: float | None) -> Message | None:
        message = await self._pubsub.get_message(timeout=wait)
        if message is not None and message["type"] == "message":
            return message["channel"].decode(), message["data"]
        return None

    async def resubscribe(self) -> None:
        with contextlib.suppress(Exception):  # the old connection is broken anyway
            await self._pubsub.aclose()
        self._pubsub = self._client.pubsub()
        if self._channels:
            await self._pubsub.subscribe(*self._channels)

    async def aclose(self) -> None:
        await self._pubsub.aclose()


class _SlotMoved(Exception):
    """A node dropped a subscription we still want: the channel's slot moved to another node."""


class _NodeConnection:
    """The listener's connection to one node: its shard channels there and the task reading
    them into the listener's inbox."""

    def __init__(self, node: ClusterNode, cluster: RedisCluster) -> None:
        options = cluster.get_connection_kwargs()
        # No retries: a broken connection is reported, and the listener reconnects with a fresh
        # slot map (a plain client would re-subscribe every channel in one SSUBSCRIBE, which a
        # node owning several of their slots refuses with CROSSSLOT).
        self.client = aioredis.Redis(
            host=node.host,
            port=int(node.port),
            username=options.get("username"),
            password=options.get("password"),
            socket_timeout=options.get("socket_timeout"),
            socket_connect_timeout=options.get("socket_connect_timeout"),
            retry=Retry(NoBackoff(), 0),
        )
        self.pubsub = self.client.pubsub()
        self.channels: set[str] = set()
        self.reader: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        for close in (self.pubsub.aclose, self.client.aclose):
            with contextlib.suppress(Exception):  # it may be broken: that is why we close it
                await close()


class _ShardedListener:
    """One connection per node owning a subscribed channel: SSUBSCRIBE. A reader task per
    connection feeds one inbox, so a message on any node is read as soon as it arrives."""

    def __init__(self, cluster: RedisCluster) -> None:
        self._cluster = cluster
        self._channels: set[str] = set()
        self._nodes: dict[str, _NodeConnection] = {}  # by node name
        self._leaving: Counter[str] = Counter()  # our SUNSUBSCRIBEs not yet confirmed
        self._inbox: asyncio.Queue[Message | Exception] = asyncio.Queue()
        self._broken = False  # a (re)subscription failed: the reader must resubscribe

    async def subscribe(self, *channels: str) -> None:
        self._channels.update(channels)
        try:
            await self._subscribe(channels)
        except Exception:
            self._broken = True
            raise

    async def _subscribe(self, channels: tuple[str, ...]) -> None:
        await self._cluster.initialize()  # learns the slot map on first use
        for channel in channels:
            node = node_of(self._cluster, channel)
            connection = self._nodes.get(node.name)
            if connection is None:
                connection = _NodeConnection(node, self._cluster)
                self._nodes[node.name] = connection
            connection.channels.add(channel)
            await connection.pubsub.ssubscribe(channel)  # one per channel: slots differ
            if connection.reader is None:
                connection.reader = asyncio.create_task(self._read(connection))

    async def unsubscribe(self, *channels: str) -> None:
        for channel in channels:
            self._channels.discard(channel)
            for connection in list(self._nodes.values()):
                if channel in connection.channels:
                    connection.channels.discard(channel)
                    self._leaving[channel] += 1
                    await connection.pubsub.sunsubscribe(channel)

    async def _read(self, connection: _NodeConnection) -> None:
        try:
            while True:
                message = await connection.pubsub.get_message(timeout=None)
                kind = None if message is None else message["type"]
                if kind == "smessage":
                    self._inbox.put_nowait((message["channel"].decode(), message["data"]))
                elif kind == "sunsubscribe":
                    channel = message["channel"].decode()
                    if self._leaving[channel] > 0:  # ours
                        self._leaving[channel] -= 1
                        if not self._leaving[channel]:
                            del self._leaving[channel]
                    elif channel in connection.channels:  # the node's: the slot moved
                        raise _SlotMoved(channel)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the reader of `next_message` resubscribes
            self._inbox.put_nowait(error)

    async def next_message(self, wait: float | None) -> Message | None:
        if self._broken:
            raise ConnectionError("a subscription failed: resubscribe")
        try:
            async with asyncio.timeout(wait):
                item = await self._inbox.get()
        except TimeoutError:
            return None
        if isinstance(item, Exception):
            raise item
        return item

    async def resubscribe(self) -> None:
        self._broken = True  # until every channel is subscribed again
        await self._close_connections()
        self._inbox = asyncio.Queue()  # errors of the old connections are answered by this
        await refresh_slot_map(self._cluster)
        await self._subscribe(tuple(self._channels))
        self._broken = False

    async def _close_connections(self) -> None:
        connections, self._nodes = list(self._nodes.values()), {}
        self._leaving.clear()
        for connection in connections:
            await connection.close()

    async def aclose(self) -> None:
        await self._close_connections()


async def dispatch_forever(
    listener: Listener,
    dispatch: Callable[[str, bytes], None],
    *,
    what: str,
    after_reconnect: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Hand every message of `listener` to `dispatch`, for ever (until cancelled). A dropped
    connection is logged (`what` lost it), then after RECONNECT_DELAY_SECONDS the listener
    subscribes again and `after_reconnect` makes up for what was missed meanwhile; if that
    fails too, the next failure tries again."""
    while True:
        try:
            message = await listener.next_message(wait=1.0)
            if message is not None:
                dispatch(*message)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("%s lost its pub/sub connection", what, exc_info=True)
            await asyncio.sleep(RECONNECT_DELAY_SECONDS)
            with contextlib.suppress(Exception):
                await listener.resubscribe()
                if after_reconnect is not None:
                    await after_reconnect()
