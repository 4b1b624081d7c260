"""FalkorDB adapter (embedded default): Cypher over the Redis protocol via `falkordb.asyncio`.

With a read replica (a second FalkorDB server that REPLICAOFs the primary), the reads that may lag
(`CypherGraph._read_about`: follow lists, counts, who-to-follow, fan-out's follower pages) run on
it with GRAPH.RO_QUERY; everything else runs on the primary.

Read-your-writes: before a follow, unfollow or user deletion, the adapter sets a marker key
`<graph>:fresh:<user id>` on the primary for both ends of the edge, expiring after `fresh_ms`.
A read about users of which one carries a marker is answered by the primary; the check is one
EXISTS on the primary, sent concurrently with the replica's query (a marked read then asks the
primary too). The marker lives on the shared primary, so it holds across API processes: whoever
asks about a user whose edges changed in the last `fresh_ms` (the user themself, the other end,
anyone) sees the change at once. After `fresh_ms`, reads about them go back to the replica,
which has the change unless it trails by more than `fresh_ms` (then they may briefly see the
older state again: keep `fresh_ms` well above the replication lag, exported at /metrics).

Fallback: a replica that refuses the connection or does not answer within the timeout is skipped
for `replica_retry_seconds` (reads go to the primary; logged once per outage); a replica that
answers with an error (e.g. it has not received the graph yet) is skipped for that one read. If
the primary cannot be asked for markers but the replica answered, the replica's answer is used:
reads stay up while the primary is down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import redis.asyncio as aioredis
import redis.exceptions
from falkordb.asyncio import FalkorDB
from falkordb.asyncio.graph import AsyncGraph

from graph.cypher import CypherGraph
from graph.port import GraphUnavailable, ReplicationLag, SocialGraph

_INDEXED_PROPERTIES = ("id", "username")
T = TypeVar("T")
log = logging.getLogger(__name__)


class FalkorDBGraph(CypherGraph):
    """`SocialGraph` on one FalkorDB graph key.

    Parameters:
      url: redis:// URL of a server that has the FalkorDB module loaded.
      graph_name: the graph key.
      timeout_seconds: bound on every call, connection included; past it `GraphUnavailable`.
      replica_url: redis:// URL of a read replica of `url` ("": none).
      fresh_ms: how long reads about a user whose edges changed stay on the primary.
      replica_retry_seconds: how long a replica that did not answer is left alone.
    """

    def __init__(
        self,
        url: str,
        graph_name: str,
        *,
        timeout_seconds: float,
        max_following: int,
        replica_url: str = "",
        fresh_ms: int = 5000,
        replica_retry_seconds: float = 5.0,
    ) -> None:
        super().__init__(max_following=max_following)
        self._timeout = timeout_seconds
        self._graph_name = graph_name
        # Our own pools: FalkorDB's aclose() leaves a pool it was handed open.
        self._pool = self._new_pool(url)
        self._db: FalkorDB | None = None
        self._graph: AsyncGraph | None = None
        self._replica_url = replica_url
        self._replica_pool = self._new_pool(replica_url) if replica_url else None
        self._replica_db: FalkorDB | None = None
        self._replica_graph: AsyncGraph | None = None
        self._fresh_ms = fresh_ms
        self._retry_seconds = replica_retry_seconds
        self._replica_skipped_until = 0.0  # time.monotonic() before which the replica is skipped

    def _new_pool(self, url: str) -> aioredis.ConnectionPool:
        return aioredis.ConnectionPool.from_url(
            url,
            decode_responses=True,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
        )

    @property
    def has_replica(self) -> bool:
        return self._replica_pool is not None

    async def _select(self) -> AsyncGraph:
        """The graph handle, made on first use. FalkorDB's client constructor probes the server
        (cluster detection) with a blocking INFO on a synchronous socket, retried with backoff:
        it runs in a thread, after an async PING, so that building the adapter does no I/O, the
        event loop never blocks, and a server that is down fails fast as `GraphUnavailable`."""
        if self._graph is None:
            await self.ping()
            db = await self._call(asyncio.to_thread(FalkorDB, connection_pool=self._pool))
            if self._graph is None:  # a concurrent first call may have finished first
                self._db, self._graph = db, db.select_graph(self._graph_name)
        return self._graph

    async def _select_replica(self, pool: aioredis.ConnectionPool) -> AsyncGraph:
        """The replica's graph handle, made on first use as in `_select`."""
        if self._replica_graph is None:
            await self._call(aioredis.Redis(connection_pool=pool).ping())
            db = await self._call(asyncio.to_thread(FalkorDB, connection_pool=pool))
            if self._replica_graph is None:
                self._replica_db, self._replica_graph = db, db.select_graph(self._graph_name)
        return self._replica_graph

    def _fresh_key(self, user_id: int) -> str:
        return f"{self._graph_name}:fresh:{user_id}"

    async def _wrote(self, user_ids: list[int]) -> None:
        """Mark the users as recently written on the primary (only when reading from a
        replica): reads about them stay on the primary for `fresh_ms`."""
        if self._replica_pool is None or not user_ids:
            return
        async with aioredis.Redis(connection_pool=self._pool).pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.set(self._fresh_key(user_id), 1, px=self._fresh_ms)
            await self._call(pipe.execute())

    async def _read_about(
        self, query: str, params: dict[str, Any], user_ids: list[int]
    ) -> list[list[Any]]:
        pool = self._replica_pool
        if pool is None or time.monotonic() < self._replica_skipped_until:
            return await self._read(query, params)
        replica_read = asyncio.ensure_future(self._replica_read(pool, query, params))
        replica_read.add_done_callback(_retrieve)  # a dropped read's error is not "unretrieved"
        try:
            marked = await self._marked(user_ids)
        except GraphUnavailable:
            marked = None  # the primary is down: the replica's answer is all there is
        except BaseException:
            replica_read.cancel()
            raise
        if marked:
            replica_read.cancel()  # a marked read is the primary's, however slow the replica
            return await self._read(query, params)
        try:
            rows = await replica_read
        except GraphUnavailable as exc:
            self._skip_replica(exc)
            return await self._read(query, params)
        except redis.exceptions.ResponseError as exc:
            log.debug("FalkorDB replica refused a read (%r): asking the primary", exc)
            return await self._read(query, params)
        self._replica_answered()
        return rows

    async def _marked(self, user_ids: list[int]) -> bool:
        """Whether any of the users' edges changed within the last `fresh_ms`."""
        if not user_ids:
            return False
        keys = [self._fresh_key(user_id) for user_id in user_ids]
        return bool(await self._call(aioredis.Redis(connection_pool=self._pool).exists(*keys)))

    async def _replica_read(
        self, pool: aioredis.ConnectionPool, query: str, params: dict[str, Any]
    ) -> list[list[Any]]:
        graph = await self._select_replica(pool)
        rows: list[list[Any]] = (await self._call(graph.ro_query(query, params))).result_set
        return rows

    def _skip_replica(self, error: GraphUnavailable) -> None:
        if self._replica_skipped_until == 0.0:  # once per outage, not per read
            log.warning(
                "FalkorDB replica %s is not answering (%s): graph reads go to the primary, "
                "retrying the replica every %s s",
                self._replica_url,
                error,
                self._retry_seconds,
            )
        self._replica_skipped_until = time.monotonic() + self._retry_seconds

    def _replica_answered(self) -> None:
        if self._replica_skipped_until != 0.0:
            log.warning("FalkorDB replica %s answers again: reading from it", self._replica_url)
            self._replica_skipped_until = 0.0

    async def replication_lag(self) -> ReplicationLag:
        """Replication stream bytes the replica has yet to process (the primary's
        master_repl_offset minus the replica's slave_repl_offset, INFO of both asked
        concurrently; -1 if the server is not a replica), and whether its link is up. Raises
        GraphUnavailable if either does not answer."""
        if self._replica_pool is None:
            raise GraphUnavailable("no FalkorDB replica is configured")
        primary, replica = await asyncio.gather(
            self._call(aioredis.Redis(connection_pool=self._pool).info("replication")),
            self._call(aioredis.Redis(connection_pool=self._replica_pool).info("replication")),
        )
        link_up = replica.get("master_link_status") == "up"
        if "slave_repl_offset" not in replica:  # not (or no longer) a replica of anything
            return ReplicationLag(lag_bytes=-1, link_up=False)
        processed = int(replica["slave_repl_offset"])
        lag = max(0, int(primary.get("master_repl_offset", 0)) - processed)
        return ReplicationLag(lag_bytes=lag, link_up=link_up)

    async def _read(self, query: str, params: dict[str, Any]) -> list[list[Any]]:
        graph = await self._select()
        rows: list[list[Any]] = (await self._call(graph.ro_query(query, params))).result_set
        return rows

    async def _write(self, query: str, params: dict[str, Any]) -> list[list[Any]]:
        graph = await self._select()
        rows: list[list[Any]] = (await self._call(graph.query(query, params))).result_set
        return rows

    async def ping(self) -> None:
        """PING, not a query: a server with no graph key yet is healthy, but rejects queries."""
        await self._call(aioredis.Redis(connection_pool=self._pool).ping())

    async def _call(self, pending: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._timeout):
                return await pending
        except (TimeoutError, redis.exceptions.ConnectionError) as exc:
            raise GraphUnavailable(f"FalkorDB: {exc!r}") from exc

    async def ensure_schema(self) -> None:
        """Range indexes on id and username, and the unique constraint on id (which FalkorDB
        builds in the background; writes are checked against it once it is operational)."""
        graph = await self._select()
        indexed = await self._indexed_properties(graph)
        for prop in _INDEXED_PROPERTIES:
            if prop not in indexed:
                await self._call(graph.create_node_range_index("User", prop))
        constraints = await self._call(graph.list_constraints())
        if not any(c["label"] == "User" and c["properties"] == ["id"] for c in constraints):
            await self._call(graph.create_node_unique_constraint("User", "id"))

    async def _indexed_properties(self, graph: AsyncGraph) -> set[str]:
        try:
            rows = (await self._call(graph.list_indices())).result_set
        except redis.exceptions.ResponseError as exc:
            if "empty key" in str(exc):  # a new graph: the first index creates its key
                return set()
            raise
        return {prop for row in rows if row[0] == "User" for prop in row[1]}

    async def close(self) -> None:
        if self._db is not None:
            await self._db.aclose()
        await self._pool.aclose()
        if self._replica_db is not None:
            await self._replica_db.aclose()
        if self._replica_pool is not None:
            await self._replica_pool.aclose()


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _implements_port(graph: FalkorDBGraph) -> SocialGraph:
    """Never called: mypy checks here that the adapter structurally satisfies the port."""
    return graph
