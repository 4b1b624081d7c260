"""Build the configured graph adapter from settings: how code outside graph/ gets a graph."""

from __future__ import annotations

from graph.port import SocialGraph
from settings import Settings


def open_graph(settings: Settings) -> SocialGraph:
    """The adapter `settings.graph_backend` names; the caller owns it and must `close()` it."""
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
    )
