"""The social-graph port: what the rest of the app may ask of the graph, whatever the engine.

`SocialGraph` is the contract every backend implements; code outside graph/ should type its graph
as `SocialGraph` and get one from `graph.factory.open_graph`. tests/test_graph_contract.py is the
suite a backend must pass.

User ids are the 64-bit integers of `storage.ids` (any value up to 2**63 - 1, so above 2**53: a
backend must not round them through doubles). Follow edges carry the millisecond time (Unix epoch)
they were made; edge lists are ordered newest follow first, ties broken by the larger user id
first, so a cursor is (time, user id).

Invariant: a user's follower and following counts always equal their numbers of edges: every call
that adds or removes edges (follow, unfollow, delete_user, bulk_follow) changes the counts in the
same atomic step, so concurrent calls cannot lose an update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


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


@dataclass(frozen=True)
class ReplicationLag:
    """How far a graph read replica trails its primary: replication stream bytes the primary
    has sent and the replica has not yet processed (-1: the server is not following the
    primary at all), and whether its link to the primary is up. Not part of `SocialGraph`:
    `graph.factory.replication_lag_probe` gives it for an adapter that reads from a replica."""

    lag_bytes: int
    link_up: bool


@runtime_checkable
class SocialGraph(Protocol):
    """Users, follow edges between them and their counts; the one interface of the graph layer.

    Every method is a coroutine and may raise `GraphUnavailable` (server down, slow or refusing)
    besides the errors it names. Each call is atomic on its own
    (the bulk loaders per batch); the port has no multi-call transactions. An adapter is built by
    `graph.factory.open_graph` with the follow cap `max_following` (Settings.max_following); the
    caller owns it and must `close()` it.
    """

    # Life cycle.

    async def ensure_schema(self) -> None:
        """Create what the backend needs before use (the Cypher adapters: a uniqueness constraint
        on user id and an index on username). Idempotent: on a graph already set up it changes
        nothing and does not raise. Called once at start-up, before any other write."""

    async def ping(self) -> None:
        """Return if the server answers a trivial request, else raise `GraphUnavailable`. Cheap
        (the health check calls it); succeeds on a graph that holds nothing yet."""

    async def close(self) -> None:
        """Release the connections. Call it once, last: no method may be called afterwards."""

    # Users.

    async def create_user(self, user_id: int, username: str) -> None:
        """Create the user with zero counts and no celebrity flag. Idempotent: a repeat with the
        same id changes nothing (not even the username)."""

    async def delete_user(self, user_id: int) -> None:
        """Remove the user and every edge to or from them; the users at the other ends lose one
        from their counts, so the counts invariant holds. An unknown id is a no-op. Used to
        collect sign-ups that never completed."""

    # Follows (the request path).

    async def follow(self, follower_id: int, followee_id: int, at_ms: int) -> bool:
        """Add the edge follower -> followee, made at `at_ms` (ms since the epoch); True if it is
        new. Idempotent: a repeat returns False and keeps the edge's first time and the counts.
        A new edge adds one to the follower's `following` and the followee's `followers`.

        Raises, in this order of checks: `CannotFollowSelf` if the ids are equal (whether or not
        the user exists); `UnknownUser(user_id)` naming the follower if it has no node, else the
        followee; `FollowLimitReached(follower_id)` if the edge is new and the follower already
        follows `max_following` accounts (a repeat follow at the cap returns False). The cap is
        exact under concurrent follows on FalkorDB (writes are serialized per graph); on Neo4j
        two follows racing at the cap may both pass.
        """

    async def unfollow(self, follower_id: int, followee_id: int) -> bool:
        """Remove the edge follower -> followee; True if there was one, else False (idempotent).
        Counts change only when an edge is removed. Raises `UnknownUser(user_id)` if either user
        has no node, naming the follower if it is missing, else the followee."""

    async def following_among(self, follower_id: int, user_ids: list[int]) -> set[int]:
        """The subset of `user_ids` that `follower_id` follows, in one round trip for the whole
        batch. Ids without a node, and an unknown follower, simply yield nothing (no error);
        duplicates are harmless; an empty list answers `set()` without a round trip."""

    async def followers_among(self, followee_id: int, user_ids: list[int]) -> set[int]:
        """The subset of `user_ids` that follow `followee_id` (the reverse of
        `following_among`), in one round trip for the whole batch: which of a replier's
        followers also follow the person replied to. Ids without a node, and an unknown
        followee, yield nothing; an empty list answers `set()` without a round trip."""

    async def counts(self, user_ids: list[int]) -> dict[int, FollowCounts]:
        """Follower and following counts of each id that has a node; ids without one are absent
        from the result (no error). Read from counters kept with the user, so the cost does not
        grow with the number of edges; one round trip for the batch; `{}` for an empty list."""

    async def followers_page(self, user_id: int, first: int, after: EdgeCursor | None) -> EdgePage:
        """Up to `first` (>= 0) edges of users who follow `user_id`: newest follow first, ties by
        larger user id first, strictly after the cursor `after` (None: from the newest).
        `has_next_page` tells whether any edge lies past the last one returned. Paging with
        `after=page.edges[-1].cursor` visits every edge that exists throughout exactly once;
        the cursor is a position, so it stays valid when its own edge is removed. An unknown
        user has an empty page."""

    async def following_page(self, user_id: int, first: int, after: EdgeCursor | None) -> EdgePage:
        """Whom `user_id` follows: the same contract as `followers_page`, the edges reversed."""

    async def who_to_follow(self, user_id: int, first: int) -> list[Suggestion]:
        """Up to `first` accounts followed by the user's followees, most such followees first
        (`mutual_followers`), ties by smaller user id first; never the user nor anyone they
        already follow. A backend may look only at a bounded sample of the user's most recent
        followees (the Cypher adapters: the 200 newest) and count mutuals within it. Empty for a
        user who follows no one, or an unknown user."""

    # Fan-out and feed building.

    async def follower_ids_page(self, user_id: int, after: int | None, limit: int) -> list[int]:
        """Up to `limit` (>= 1) ids of the user's followers, ascending, each greater than `after`
        (None: from the smallest). A page shorter than `limit` is the last one; to go on, pass
        the last id of a full page as `after`. Keyed by id rather than follow time, so follows
        and unfollows during a walk cannot shift it: every follower present throughout the walk
        is returned exactly once. An unknown user has no followers (`[]`)."""

    async def followee_ids(self, user_id: int) -> list[tuple[int, bool]]:
        """Everyone `user_id` follows, as (followee id, followee's celebrity flag), each once, in
        no particular order; at most `max_following` rows (more can only exist in a graph seeded
        with `bulk_follow`, and then which ones come back is unspecified). `[]` for an unknown
        user."""

    async def celebrity_status(self, user_id: int) -> tuple[int, bool] | None:
        """(followers count, celebrity flag) of the user, or None if there is no such user. The
        flag is False until `set_celebrity` sets it."""

    async def set_celebrity(self, user_id: int, flag: bool) -> None:
        """Store the celebrity flag that `celebrity_status` and `followee_ids` report. The graph
        only keeps it (the fan-out decides it). Idempotent; an unknown id is a no-op."""

    # Seeding. Not on the request path: benchmarks, tests and imports fill a graph with these, so
    # every backend must support them.

    async def bulk_create_users(self, users: list[tuple[int, str]]) -> None:
        """`create_user` for many (user id, username) pairs, in as few round trips as the
        backend allows. Idempotent per id (an id repeated, in the list or from an earlier call,
        keeps its first username). Atomic per batch, not as a whole: after `GraphUnavailable`
        some users may exist; calling again with the same list completes the load."""

    async def bulk_follow(self, edges: list[tuple[int, int, int]]) -> None:
        """Add many (follower id, followee id, at_ms) edges, in as few round trips as the backend
        allows, keeping the counts invariant. Idempotent per edge (a repeat, in the list or from
        before, keeps the first edge and its time). Unlike `follow` it raises nothing but
        `GraphUnavailable`: it skips the `max_following` check, and silently skips self-follows
        and edges naming an id without a node. Atomic per batch, not as a whole; calling again
        with the same list completes the load."""
