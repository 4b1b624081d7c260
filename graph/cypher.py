"""The Cypher both engines accept, and the operations of the port written once on top of it.

Adapters subclass `CypherGraph` and supply only how a parameterized statement reaches their server
(`_read` / `_write`), schema set-up, ping and close. Every statement is a single auto-committed
query, so each operation is atomic on both engines; no user input is ever formatted into the text.

User ids are stored as 19-digit zero-padded strings, not integers: FalkorDB's range index holds
numbers as doubles, and 64-bit snowflake ids above 2**53 that differ in the last bits would collide
in its uniqueness constraint. Zero padding keeps string order equal to numeric order.

Follow counts are properties of the user node, changed by the same statement that creates or deletes
the edge, so a read costs one index lookup and concurrent follows cannot lose an increment.

Reads that may lag: the follow lists, counts, who-to-follow and fan-out's follower pages go
through `_read_about`, naming the users they are about, which an adapter with a read replica may
serve from it; a write that changes a user's edges first calls `_wrote` with both ends, so the
adapter can keep reads about them on the primary for a while (read-your-writes). Reads that
decide what a write or a visibility check does right away (`following_among`, `followee_ids`,
`celebrity_status`, the checks behind follow errors) always use `_read`, on the primary.
"""

from __future__ import annotations

import abc
from typing import Any

from graph.port import (
    CannotFollowSelf,
    EdgeCursor,
    EdgePage,
    FollowCounts,
    FollowEdge,
    FollowLimitReached,
    Suggestion,
    UnknownUser,
)


def _key(user_id: int) -> str:
    return f"{user_id:019d}"


def _keys(user_ids: list[int]) -> list[str]:
    return [_key(user_id) for user_id in user_ids]


# Larger than any follow time in ms, so "before this cursor" with no cursor matches every edge.
_NO_CURSOR = EdgeCursor(followed_at_ms=2**62, user_id=2**63 - 1)

CREATE_USER = """
MERGE (u:User {id: $id})
ON CREATE SET u.username = $username, u.followers = 0, u.following = 0
"""

BULK_CREATE_USERS = """
UNWIND $users AS user
MERGE (u:User {id: user.id})
ON CREATE SET u.username = user.username, u.followers = 0, u.following = 0
"""

# For seeding (benchmarks, imports): no cap check, one statement per batch.
BULK_FOLLOW = """
UNWIND $edges AS edge
MATCH (a:User {id: edge.follower}), (b:User {id: edge.followee})
MERGE (a)-[r:FOLLOWS]->(b)
ON CREATE SET r.at = edge.at, a.following = a.following + 1, b.followers = b.followers + 1
"""

# The counters of the users at the other ends go down in the same statement, as in UNFOLLOW.
DELETE_USER = """
MATCH (u:User {id: $id})
OPTIONAL MATCH (u)-[:FOLLOWS]->(followee:User)
WITH u, collect(followee) AS followees
OPTIONAL MATCH (follower:User)-[:FOLLOWS]->(u)
WITH u, followees, collect(follower) AS followers
FOREACH (b IN followees | SET b.followers = b.followers - 1)
FOREACH (a IN followers | SET a.following = a.following - 1)
DETACH DELETE u
"""

# The cap is checked in the statement that adds the edge. FalkorDB runs writes to one graph one at a
# time, so it is exact there; on Neo4j two follows racing at the cap may both pass the check.
FOLLOW = """
MATCH (a:User {id: $follower}), (b:User {id: $followee})
OPTIONAL MATCH (a)-[existing:FOLLOWS]->(b)
WITH a, b, existing
WHERE existing IS NOT NULL OR a.following < $max_following
MERGE (a)-[r:FOLLOWS]->(b)
ON CREATE SET r.at = $at, a.following = a.following + 1, b.followers = b.followers + 1
RETURN existing IS NULL AS created
"""

UNFOLLOW = """
MATCH (a:User {id: $follower})-[r:FOLLOWS]->(b:User {id: $followee})
DELETE r
SET a.following = a.following - 1, b.followers = b.followers - 1
RETURN 1 AS removed
"""

EXISTING_USERS = "UNWIND $ids AS id MATCH (u:User {id: id}) RETURN u.id"

FOLLOWING_AMONG = """
UNWIND $ids AS id
MATCH (:User {id: $follower})-[:FOLLOWS]->(b:User {id: id})
RETURN b.id
"""

FOLLOWERS_AMONG = """
UNWIND $ids AS id
MATCH (a:User {id: id})-[:FOLLOWS]->(:User {id: $followee})
RETURN a.id
"""

COUNTS = "UNWIND $ids AS id MATCH (u:User {id: id}) RETURN u.id, u.followers, u.following"


def _edge_page_query(pattern: str) -> str:
    """A page of edges around `u`, newest first, strictly after the cursor ($at, $after_id)."""
    return f"""
MATCH {pattern}
WHERE r.at < $at OR (r.at = $at AND other.id < $after_id)
RETURN other.id AS id, r.at AS at
ORDER BY at DESC, id DESC
LIMIT $limit
"""


FOLLOWERS_PAGE = _edge_page_query("(other:User)-[r:FOLLOWS]->(u:User {id: $id})")
FOLLOWING_PAGE = _edge_page_query("(u:User {id: $id})-[r:FOLLOWS]->(other:User)")

# Only the most recent `$sample` followees are expanded: a user may follow 5,000 accounts that each
# follow 5,000 more, and 25 M paths per request is not a suggestion query.
WHO_TO_FOLLOW = """
MATCH (me:User {id: $id})-[r:FOLLOWS]->(f:User)
WITH me, f ORDER BY r.at DESC LIMIT $sample
MATCH (f)-[:FOLLOWS]->(s:User)
WHERE s.id <> $id AND NOT (me)-[:FOLLOWS]->(s)
RETURN s.id AS id, count(*) AS mutuals
ORDER BY mutuals DESC, id ASC
LIMIT $limit
"""

# Fan-out and feed rebuilds. Follower pages go by id (a cursor that new follows cannot shift).
# The author is matched first (WITH): with the range on f.id, FalkorDB's planner would otherwise
# scan every user by the id index and check each one's edge (cost by graph size, not audience).
FOLLOWER_IDS_PAGE = """
MATCH (a:User {id: $id})
WITH a
MATCH (f:User)-[:FOLLOWS]->(a)
WHERE f.id > $after
RETURN f.id AS id
ORDER BY id
LIMIT $limit
"""

FOLLOWEE_IDS = """
MATCH (:User {id: $id})-[:FOLLOWS]->(f:User)
RETURN f.id, coalesce(f.celebrity, false)
LIMIT $limit
"""

CELEBRITY_STATUS = "MATCH (u:User {id: $id}) RETURN u.followers, coalesce(u.celebrity, false)"

SET_CELEBRITY = "MATCH (u:User {id: $id}) SET u.celebrity = $flag"

PING = "RETURN 1"


class CypherGraph(abc.ABC):
    """The `SocialGraph` operations, for any engine that runs the Cypher above. The contract of
    each method is its docstring in `graph.port.SocialGraph`."""

    def __init__(
        self, *, max_following: int, who_to_follow_sample: int = 200, bulk_batch_size: int = 1000
    ) -> None:
        self.max_following = max_following
        self.who_to_follow_sample = who_to_follow_sample
        self.bulk_batch_size = bulk_batch_size

    @abc.abstractmethod
    async def _read(self, query: str, params: dict[str, Any]) -> list[list[Any]]:
        """Run a read-only statement; rows as lists of values. Raises GraphUnavailable."""

    async def _read_about(
        self, query: str, params: dict[str, Any], user_ids: list[int]
    ) -> list[list[Any]]:
        """A read-only statement about `user_ids` that may be served by a replica (lagging);
        by default the same as `_read`."""
        return await self._read(query, params)

    async def _wrote(self, user_ids: list[int]) -> None:
        """Called before a statement that changes these users' edges or counts; by default
        nothing (an adapter with a replica routes reads about them to the primary)."""
        return None

    @abc.abstractmethod
    async def _write(self, query: str, params: dict[str, Any]) -> list[list[Any]]:
        """Run a statement that may write; rows as lists of values. Raises GraphUnavailable."""

    @abc.abstractmethod
    async def ensure_schema(self) -> None:
        """Indexes and the uniqueness constraint on user id: DDL differs per engine."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the driver's connections."""

    async def ping(self) -> None:
        await self._read(PING, {})

    async def create_user(self, user_id: int, username: str) -> None:
        await self._write(CREATE_USER, {"id": _key(user_id), "username": username})

    async def bulk_create_users(self, users: list[tuple[int, str]]) -> None:
        """A batch of `bulk_batch_size` users per statement. Repeated ids are dropped here (the
        first kept) rather than left to MERGE within one statement."""
        first: dict[int, str] = {}
        for user_id, username in users:
            first.setdefault(user_id, username)
        rows = [{"id": _key(user_id), "username": username} for user_id, username in first.items()]
        await self._write_in_batches(BULK_CREATE_USERS, "users", rows)

    async def bulk_follow(self, edges: list[tuple[int, int, int]]) -> None:
        """A batch of `bulk_batch_size` edges per statement. Self-follows and repeated edges are
        dropped here (the first kept); edges naming an unknown id match nothing in BULK_FOLLOW."""
        first: dict[tuple[int, int], int] = {}
        for follower, followee, at_ms in edges:
            if follower != followee:
                first.setdefault((follower, followee), at_ms)
        rows = [
            {"follower": _key(a), "followee": _key(b), "at": at_ms}
            for (a, b), at_ms in first.items()
        ]
        await self._write_in_batches(BULK_FOLLOW, "edges", rows)

    async def _write_in_batches(self, query: str, name: str, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), self.bulk_batch_size):
            await self._write(query, {name: rows[start : start + self.bulk_batch_size]})

    async def delete_user(self, user_id: int) -> None:
        await self._wrote([user_id])
        await self._write(DELETE_USER, {"id": _key(user_id)})

    async def follow(self, follower_id: int, followee_id: int, at_ms: int) -> bool:
        if follower_id == followee_id:
            raise CannotFollowSelf(follower_id)
        params = {
            "follower": _key(follower_id),
            "followee": _key(followee_id),
            "at": at_ms,
            "max_following": self.max_following,
        }
        await self._wrote([follower_id, followee_id])
        rows = await self._write(FOLLOW, params)
        if rows:
            return bool(rows[0][0])
        await self._require_users(follower_id, followee_id)
        raise FollowLimitReached(follower_id)

    async def unfollow(self, follower_id: int, followee_id: int) -> bool:
        params = {"follower": _key(follower_id), "followee": _key(followee_id)}
        await self._wrote([follower_id, followee_id])
        rows = await self._write(UNFOLLOW, params)
        if rows:
            return True
        await self._require_users(follower_id, followee_id)
        return False

    async def following_among(self, follower_id: int, user_ids: list[int]) -> set[int]:
        if not user_ids:
            return set()
        params = {"follower": _key(follower_id), "ids": _keys(user_ids)}
        rows = await self._read(FOLLOWING_AMONG, params)
        return {int(row[0]) for row in rows}

    async def followers_among(self, followee_id: int, user_ids: list[int]) -> set[int]:
        if not user_ids:
            return set()
        params = {"followee": _key(followee_id), "ids": _keys(user_ids)}
        rows = await self._read(FOLLOWERS_AMONG, params)
        return {int(row[0]) for row in rows}

    async def counts(self, user_ids: list[int]) -> dict[int, FollowCounts]:
        if not user_ids:
            return {}
        rows = await self._read_about(COUNTS, {"ids": _keys(user_ids)}, user_ids)
        return {int(row[0]): FollowCounts(followers=row[1], following=row[2]) for row in rows}

    async def followers_page(self, user_id: int, first: int, after: EdgeCursor | None) -> EdgePage:
        return await self._edge_page(FOLLOWERS_PAGE, user_id, first, after)

    async def following_page(self, user_id: int, first: int, after: EdgeCursor | None) -> EdgePage:
        return await self._edge_page(FOLLOWING_PAGE, user_id, first, after)

    async def who_to_follow(self, user_id: int, first: int) -> list[Suggestion]:
        params = {"id": _key(user_id), "sample": self.who_to_follow_sample, "limit": first}
        rows = await self._read_about(WHO_TO_FOLLOW, params, [user_id])
        return [Suggestion(user_id=int(row[0]), mutual_followers=row[1]) for row in rows]

    async def follower_ids_page(self, user_id: int, after: int | None, limit: int) -> list[int]:
        """Up to `limit` follower ids greater than `after`, ascending (fan-out paging)."""
        params = {
            "id": _key(user_id),
            "after": "" if after is None else _key(after),
            "limit": limit,
        }
        rows = await self._read_about(FOLLOWER_IDS_PAGE, params, [user_id])
        return [int(row[0]) for row in rows]

    async def followee_ids(self, user_id: int) -> list[tuple[int, bool]]:
        """Everyone the user follows (at most MAX_FOLLOWING), each with its celebrity flag."""
        params = {"id": _key(user_id), "limit": self.max_following}
        return [(int(row[0]), bool(row[1])) for row in await self._read(FOLLOWEE_IDS, params)]

    async def celebrity_status(self, user_id: int) -> tuple[int, bool] | None:
        """(followers count, celebrity flag) of the user, or None if there is no such user."""
        rows = await self._read(CELEBRITY_STATUS, {"id": _key(user_id)})
        return (rows[0][0], bool(rows[0][1])) if rows else None

    async def set_celebrity(self, user_id: int, flag: bool) -> None:
        await self._write(SET_CELEBRITY, {"id": _key(user_id), "flag": flag})

    async def _edge_page(
        self, query: str, user_id: int, first: int, after: EdgeCursor | None
    ) -> EdgePage:
        cursor = after or _NO_CURSOR
        params = {
            "id": _key(user_id),
            "at": cursor.followed_at_ms,
            "after_id": _key(cursor.user_id),
            "limit": first + 1,  # one more than asked tells whether a next page exists
        }
        rows = await self._read_about(query, params, [user_id])
        edges = [FollowEdge(user_id=int(row[0]), followed_at_ms=row[1]) for row in rows[:first]]
        return EdgePage(edges=edges, has_next_page=len(rows) > first)

    async def _require_users(self, *user_ids: int) -> None:
        """Raise `UnknownUser` naming the first id that has no node."""
        rows = await self._read(EXISTING_USERS, {"ids": _keys(list(user_ids))})
        found = {int(row[0]) for row in rows}
        for user_id in user_ids:
            if user_id not in found:
                raise UnknownUser(user_id)
