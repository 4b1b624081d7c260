"""The social-graph port: what the rest of the app may ask of the graph, whatever the engine.

User ids are the 64-bit integers of `storage.ids`. Follow edges carry the millisecond time they were
made; lists are ordered newest follow first, ties broken by user id, so a cursor is (time, user id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class GraphError(Exception):
    """Base of every error the graph layer raises."""


class GraphUnavailable(GraphError):
    """The graph server did not answer in time or refused the connection."""


class UnknownUser(GraphError):
    """A user id named in the request has no node."""


class CannotFollowSelf(GraphError):
    """A user tried to follow themself."""


class FollowLimitReached(GraphError):
    """The follower already follows `max_following` accounts."""


@dataclass(frozen=True, order=True)
class EdgeCursor:
    """Position in a follow list: the follow time and the other user's id of the last edge seen."""

    followed_at_ms: int
    user_id: int


@dataclass(frozen=True)
class FollowEdge:
    user_id: int
    followed_at_ms: int

    @property
    def cursor(self) -> EdgeCursor:
        return EdgeCursor(self.followed_at_ms, self.user_id)


@dataclass(frozen=True)
class EdgePage:
    edges: list[FollowEdge]
    has_next_page: bool


@dataclass(frozen=True)
class FollowCounts:
    followers: int
    following: int


@dataclass(frozen=True)
class Suggestion:
    """An account to follow and how many of the viewer's followees follow it."""

    user_id: int
    mutual_followers: int


class SocialGraph(Protocol):
    """Follow relationships and their counts. Every method may raise `GraphUnavailable`."""

    async def ensure_schema(self) -> None:
        """Create the uniqueness constraint on user id and the username index; idempotent."""

    async def ping(self) -> None:
        """Raise `GraphUnavailable` unless the server answers a trivial query."""

    async def close(self) -> None: ...

    async def create_user(self, user_id: int, username: str) -> None:
        """Create the user's node with zero counts; a repeat with the same id changes nothing."""

    async def delete_user(self, user_id: int) -> None:
        """Remove the node and its edges (used only for sign-ups that never completed)."""

    async def follow(self, follower_id: int, followee_id: int, at_ms: int) -> bool:
        """Add the edge; True if it is new. Idempotent; counts change only for a new edge.

        Raises `CannotFollowSelf`, `UnknownUser`, `FollowLimitReached`.
        """

    async def unfollow(self, follower_id: int, followee_id: int) -> bool:
        """Remove the edge; True if there was one. Idempotent. Raises `UnknownUser`."""

    async def following_among(self, follower_id: int, user_ids: list[int]) -> set[int]:
        """The subset of `user_ids` that `follower_id` follows (one query for the whole batch)."""

    async def counts(self, user_ids: list[int]) -> dict[int, FollowCounts]:
        """Follower and followee counts, read from counters kept on the node: no edge scan."""

    async def followers_page(self, user_id: int, first: int, after: EdgeCursor | None) -> EdgePage:
        """Who follows `user_id`, newest follow first."""

    async def following_page(self, user_id: int, first: int, after: EdgeCursor | None) -> EdgePage:
        """Whom `user_id` follows, newest follow first."""

    async def who_to_follow(self, user_id: int, first: int) -> list[Suggestion]:
        """Accounts followed by the user's followees, most such followees first, then by id;
        never the user nor anyone they already follow."""
