"""FalkorDB adapter (embedded default): Cypher over the Redis protocol via `falkordb.asyncio`."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from falkordb.asyncio import FalkorDB

from graph.cypher import CypherGraph
from graph.port import GraphUnavailable

_INDEXED_PROPERTIES = ("id", "username")


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
        # Our own pool: FalkorDB's aclose() leaves a pool it was handed open.
        self._pool = aioredis.ConnectionPool.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
        )
        self._db = FalkorDB(connection_pool=self._pool)
        self._graph = self._db.select_graph(graph_name)

    async def _read(self, query: str, params: dict[str, Any]) -> list[list[Any]]:
        return (await self._call(self._graph.ro_query(query, params))).result_set

    async def _write(self, query: str, params: dict[str, Any]) -> list[list[Any]]:
        return (await self._call(self._graph.query(query, params))).result_set

    async def ping(self) -> None:
        """PING, not a query: a server with no graph key yet is healthy, but rejects queries."""
        await self._call(self._db.connection.ping())

    async def _call(self, pending: Any) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                return await pending
        except (TimeoutError, redis.exceptions.ConnectionError) as exc:
            raise GraphUnavailable(f"FalkorDB: {exc!r}") from exc

    async def ensure_schema(self) -> None:
        """Range indexes on id and username, and the unique constraint on id (which FalkorDB
        builds in the background; writes are checked against it once it is operational)."""
        indexed = await self._indexed_properties()
        for prop in _INDEXED_PROPERTIES:
            if prop not in indexed:
                await self._call(self._graph.create_node_range_index("User", prop))
        constraints = await self._graph.list_constraints()
        if not any(c["label"] == "User" and c["properties"] == ["id"] for c in constraints):
            await self._graph.create_node_unique_constraint("User", "id")

    async def _indexed_properties(self) -> set[str]:
        try:
            rows = (await self._call(self._graph.list_indices())).result_set
        except redis.exceptions.ResponseError as exc:
            if "empty key" in str(exc):  # a new graph: the first index creates its key
                return set()
            raise
        return {prop for row in rows if row[0] == "User" for prop in row[1]}

    async def close(self) -> None:
        await self._db.aclose()
        await self._pool.aclose()
