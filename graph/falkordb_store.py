"""FalkorDB adapter (embedded default): Cypher over the Redis protocol via `falkordb.asyncio`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import redis.asyncio as aioredis
import redis.exceptions
from falkordb.asyncio import FalkorDB
from falkordb.asyncio.graph import AsyncGraph

from graph.cypher import CypherGraph
from graph.port import GraphUnavailable, SocialGraph

_INDEXED_PROPERTIES = ("id", "username")
T = TypeVar("T")


class FalkorDBGraph(CypherGraph):
    """`SocialGraph` on one FalkorDB graph key.

    Parameters:
      url: redis:// URL of a server that has the FalkorDB module loaded.
      graph_name: the graph key.
      timeout_seconds: bound on every call, connection included; past it `GraphUnavailable`.
    """

    def __init__(
        self, url: str, graph_name: str, *, timeout_seconds: float, max_following: int
    ) -> None:
        super().__init__(max_following=max_following)
        self._timeout = timeout_seconds
        self._graph_name = graph_name
        # Our own pool: FalkorDB's aclose() leaves a pool it was handed open.
        self._pool = aioredis.ConnectionPool.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
        )
        self._db: FalkorDB | None = None
        self._graph: AsyncGraph | None = None

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


def _implements_port(graph: FalkorDBGraph) -> SocialGraph:
    """Never called: mypy checks here that the adapter structurally satisfies the port."""
    return graph
