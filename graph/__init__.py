"""The social graph: one async port (`SocialGraph`), two adapters (FalkorDB, Neo4j)."""

from graph.port import (
    CannotFollowSelf,
    EdgeCursor,
    EdgePage,
    FollowCounts,
    FollowEdge,
    FollowLimitReached,
    GraphError,
    GraphUnavailable,
    SocialGraph,
    Suggestion,
    UnknownUser,
)

__all__ = [
    "CannotFollowSelf",
    "EdgeCursor",
    "EdgePage",
    "FollowCounts",
    "FollowEdge",
    "FollowLimitReached",
    "GraphError",
    "GraphUnavailable",
    "SocialGraph",
    "Suggestion",
    "UnknownUser",
]
