"""Build the configured graph adapter from settings: how code outside graph/ gets a graph."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from graph.port import ReplicationLag, SocialGraph
from settings import Settings


def open_graph(settings: Settings) -> SocialGraph:
    """The adapter `settings.graph_backend` names; the caller owns it and must `close()` it.
    FalkorDB reads from FALKORDB_REPLICA_URL when it is set. Neo4j ignores that setting: its
    driver sends reads in READ access mode, which a Neo4j cluster routes to its readers by
    itself (without read-your-writes across calls: each call is its own session, no bookmarks
    are carried)."""
    if settings.graph_backend == "neo4j":
        from graph.neo4j_store import Neo4jGraph

        auth = (settings.neo4j_user, settings.neo4j_password) if settings.neo4j_user else None
        return Neo4jGraph(
            settings.neo4j_uri,
            auth=auth,
            database=settings.neo4j_database or None,
            timeout_seconds=settings.graph_timeout_seconds,
            max_following=settings.max_following,
        )
    from graph.falkordb_store import FalkorDBGraph

    return FalkorDBGraph(
        settings.falkordb_url,
        settings.graph_name,
        timeout_seconds=settings.graph_timeout_seconds,
        max_following=settings.max_following,
        replica_url=settings.falkordb_replica_url,
        fresh_ms=settings.falkordb_replica_fresh_ms,
        replica_retry_seconds=settings.falkordb_replica_retry_seconds,
    )


def replication_lag_probe(graph: SocialGraph) -> Callable[[], Awaitable[ReplicationLag]] | None:
    """How to ask how far this adapter's read replica trails (for /metrics); None if it reads
    from no replica of its own."""
    from graph.falkordb_store import FalkorDBGraph

    if isinstance(graph, FalkorDBGraph) and graph.has_replica:
        return graph.replication_lag
    return None
