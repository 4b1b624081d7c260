"""Neo4j adapter (production): the same Cypher over Bolt with the official async driver."""

from __future__ import annotations

import asyncio
from typing import Any

import neo4j
import neo4j.exceptions

from graph.cypher import CypherGraph
from graph.port import GraphUnavailable, SocialGraph

SCHEMA = (
    "CREATE CONSTRAINT user_id_unique IF NOT EXISTS FOR (u:User) REQUIRE u.id IS UNIQUE",
    "CREATE INDEX user_username IF NOT EXISTS FOR (u:User) ON (u.username)",
)


class Neo4jGraph(CypherGraph):
    """`SocialGraph` on Neo4j.

    Each operation is one auto-commit statement (atomic on its own; the port needs no
    multi-statement transaction). Parameters:
      uri: bolt:// or neo4j:// URI.
      auth: (user, password), or None for a server without authentication.
      database: database name, or None for the server's default.
      timeout_seconds: bound on every call, connection and pool wait included.
      route_reads: send reads in READ access mode, so a cluster serves them from its readers.
        (FalkorDB's Bolt listener mistakes the mode for a graph name; its tests turn this off.)
      bulk_batch_size: rows per statement of the bulk loaders.
    """

    def __init__(
        self,
        uri: str,
        *,
        auth: tuple[str, str] | None,
        database: str | None,
        timeout_seconds: float,
        max_following: int,
        route_reads: bool = True,
        bulk_batch_size: int = 1000,
    ) -> None:
        super().__init__(max_following=max_following, bulk_batch_size=bulk_batch_size)
        self._timeout = timeout_seconds
        self._read_mode = neo4j.READ_ACCESS if route_reads else neo4j.WRITE_ACCESS
        self._database = database
        self._driver = neo4j.AsyncGraphDatabase.driver(
            uri,
            auth=auth,
            connection_timeout=timeout_seconds,
            connection_acquisition_timeout=timeout_seconds,
            max_transaction_retry_time=timeout_seconds,
        )

    async def _read(self, query: str, params: dict[str, Any]) -> list[list[Any]]:
        return await self._run(query, params, self._read_mode)

    async def _write(self, query: str, params: dict[str, Any]) -> list[list[Any]]:
        return await self._run(query, params, neo4j.WRITE_ACCESS)

    async def _run(self, query: str, params: dict[str, Any], access: str) -> list[list[Any]]:
        try:
            async with asyncio.timeout(self._timeout):
                session = self._driver.session(database=self._database, default_access_mode=access)
                async with session:
                    result = await session.run(query, params)
                    return [list(record.values()) async for record in result]
        except (TimeoutError, neo4j.exceptions.ServiceUnavailable, OSError) as exc:
            raise GraphUnavailable(f"Neo4j: {exc!r}") from exc

    async def ensure_schema(self) -> None:
        for statement in SCHEMA:
            await self._write(statement, {})

    async def close(self) -> None:
        await self._driver.close()


def _implements_port(graph: Neo4jGraph) -> SocialGraph:
    """Never called: mypy checks here that the adapter structurally satisfies the port."""
    return graph
