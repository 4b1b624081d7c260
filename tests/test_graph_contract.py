"""The social-graph contract (`graph.port.SocialGraph`), run against every engine.

The tests see only the port: `graph_engine` (conftest) yields each adapter typed `SocialGraph`, and
the factory tests get theirs from `open_graph(settings)`. A new backend is done when this suite
passes against it. The fixture's follow cap (`max_following`) is 5.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import replace

import pytest

from devstack.servers import LOOPBACK, free_port
from graph.factory import open_graph
from graph.port import (
    CannotFollowSelf,
    EdgeCursor,
    EdgePage,
    FollowCounts,
    FollowEdge,
    FollowLimitReached,
    GraphUnavailable,
    SocialGraph,
    Suggestion,
    UnknownUser,
)
from settings import Settings

ALICE, BOB, CAROL, DAVE, ERIN, FRANK, GRACE = range(1001, 1008)
NOBODY = 9999  # never created
BIG = 383_779_814_237_900_800  # a real snowflake id, above 2**53: BIG + 1 is the same double

PORT_METHODS = sorted(
    name for name, member in vars(SocialGraph).items() if inspect.iscoroutinefunction(member)
)


async def make_users(graph: SocialGraph, *ids: int) -> None:
    for user_id in ids:
        await graph.create_user(user_id, f"user{user_id}")


async def all_pages(graph: SocialGraph, user_id: int, first: int, *, followers: bool) -> list[int]:
    """Every id of the user's followers (or followees), walked page by page with cursors."""
    read = graph.followers_page if followers else graph.following_page
    seen: list[int] = []
    cursor: EdgeCursor | None = None
    while True:
        page = await read(user_id, first, cursor)
        assert len(page.edges) <= first
        seen += [edge.user_id for edge in page.edges]
        if not page.has_next_page:
            return seen
        cursor = page.edges[-1].cursor


async def all_follower_ids(graph: SocialGraph, user_id: int, limit: int) -> list[list[int]]:
    """The pages of `follower_ids_page`, walked as the fan-out does (a short page is the last)."""
    pages: list[list[int]] = []
    after: int | None = None
    while True:
        page = await graph.follower_ids_page(user_id, after, limit)
        assert len(page) <= limit
        pages.append(page)
        if len(page) < limit:
            return pages
        after = page[-1]


def engine_of(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["graph_engine"])


# The port itself.


async def test_adapter_implements_the_port(graph_engine: SocialGraph) -> None:
    assert isinstance(graph_engine, SocialGraph)
    for name in PORT_METHODS:
        assert inspect.iscoroutinefunction(getattr(graph_engine, name)), name


async def test_ping_and_ensure_schema_is_idempotent(
    graph_engine: SocialGraph, request: pytest.FixtureRequest
) -> None:
    await graph_engine.ping()
    if engine_of(request) == "bolt":
        pytest.skip("FalkorDB's Bolt listener does not speak Neo4j's DDL (conftest.graph_engine)")
    await graph_engine.ensure_schema()  # the fixture has run it once already
    await make_users(graph_engine, ALICE)
    await graph_engine.ensure_schema()
    assert await graph_engine.counts([ALICE]) == {ALICE: FollowCounts(0, 0)}


# The factory.


async def test_open_graph_builds_the_configured_adapter(settings: Settings) -> None:
    graph: SocialGraph = open_graph(settings)
    try:
        assert isinstance(graph, SocialGraph)
        await graph.ping()  # before anything was written
        await graph.ensure_schema()
        await make_users(graph, ALICE, BOB)
        assert await graph.follow(ALICE, BOB, at_ms=1) is True
        assert await graph.counts([BOB]) == {BOB: FollowCounts(followers=1, following=0)}
    finally:
        await graph.close()


@pytest.mark.parametrize("backend", ["falkordb", "neo4j"])
async def test_unreachable_server_raises_graph_unavailable(
    settings: Settings, backend: str
) -> None:
    nobody_listens = free_port()
    graph = open_graph(
        replace(
            settings,
            graph_backend=backend,
            falkordb_url=f"redis://{LOOPBACK}:{nobody_listens}",
            neo4j_uri=f"bolt://{LOOPBACK}:{nobody_listens}",
            graph_timeout_seconds=2,
        )
    )
    try:
        with pytest.raises(GraphUnavailable):
            await graph.ping()
        with pytest.raises(GraphUnavailable):
            await graph.counts([ALICE])
        with pytest.raises(GraphUnavailable):
            await graph.follow(ALICE, BOB, at_ms=1)
    finally:
        await graph.close()


# Users.


async def test_create_user_is_idempotent(graph_engine: SocialGraph) -> None:
    await make_users(graph_engine, ALICE, ALICE)
    assert await graph_engine.counts([ALICE]) == {ALICE: FollowCounts(0, 0)}
    assert await graph_engine.celebrity_status(ALICE) == (0, False)


async def test_delete_user_removes_node_and_edges(graph_engine: SocialGraph) -> None:
    await make_users(graph_engine, ALICE, BOB)
    await graph_engine.follow(ALICE, BOB, at_ms=1)
    await graph_engine.delete_user(BOB)
    assert await graph_engine.counts([BOB]) == {}
    assert (await graph_engine.following_page(ALICE, first=5, after=None)).edges == []


async def test_delete_user_keeps_the_counts_of_the_others(graph_engine: SocialGraph) -> None:
    await make_users(graph_engine, ALICE, BOB, CAROL, DAVE)
    for follower, followee in [(ALICE, BOB), (CAROL, BOB), (BOB, DAVE), (ALICE, DAVE)]:
        await graph_engine.follow(follower, followee, at_ms=1)
    await graph_engine.delete_user(BOB)
    assert await graph_engine.counts([ALICE, BOB, CAROL, DAVE]) == {
        ALICE: FollowCounts(followers=0, following=1),
        CAROL: FollowCounts(followers=0, following=0),
        DAVE: FollowCounts(followers=1, following=0),
    }
    assert await graph_engine.following_among(ALICE, [BOB, DAVE]) == {DAVE}
    assert await graph_engine.follower_ids_page(DAVE, None, 10) == [ALICE]
    with pytest.raises(UnknownUser):
        await graph_engine.follow(ALICE, BOB, at_ms=2)
    await graph_engine.delete_user(BOB)  # again: a no-op
    await graph_engine.delete_user(NOBODY)
    await make_users(graph_engine, BOB)  # the id can be used again, from zero
    assert await graph_engine.counts([BOB]) == {BOB: FollowCounts(0, 0)}
    assert await graph_engine.followers_page(BOB, first=5, after=None) == EdgePage([], False)


async def test_ids_above_two_to_the_53_stay_distinct(graph_engine: SocialGraph) -> None:
    await make_users(graph_engine, BIG, BIG + 1)
    await graph_engine.follow(BIG, BIG + 1, at_ms=1)
    assert await graph_engine.counts([BIG, BIG + 1]) == {
        BIG: FollowCounts(followers=0, following=1),
        BIG + 1: FollowCounts(followers=1, following=0),
    }
    assert await graph_engine.following_among(BIG, [BIG + 1]) == {BIG + 1}
    assert await graph_engine.followers_among(BIG + 1, [BIG, BIG + 2]) == {BIG}
    assert await graph_engine.follower_ids_page(BIG + 1, None, 5) == [BIG]


# Follows.


async def test_follow_counts_and_idempotence(graph_engine: SocialGraph) -> None:
    await make_users(graph_engine, ALICE, BOB)
    assert await graph_engine.follow(ALICE, BOB, at_ms=1) is True
    assert await graph_engine.follow(ALICE, BOB, at_ms=2) is False
    assert await graph_engine.counts([ALICE, BOB]) == {
        ALICE: FollowCounts(followers=0, following=1),
        BOB: FollowCounts(followers=1, following=0),
    }
    # The repeat kept the edge's first time.
    assert await graph_engine.following_page(ALICE, first=5, after=None) == EdgePage(
        [FollowEdge(user_id=BOB, followed_at_ms=1)], has_next_page=False
    )
    assert await graph_engine.following_among(ALICE, [BOB, CAROL]) == {BOB}
    assert await graph_engine.followers_among(BOB, [ALICE, CAROL, NOBODY, ALICE]) == {ALICE}
    assert await graph_engine.followers_among(NOBODY, [ALICE]) == set()
    assert await graph_engine.followers_among(BOB, []) == set()
    assert await graph_engine.unfollow(ALICE, BOB) is True
    assert await graph_engine.unfollow(ALICE, BOB) is False
    assert await graph_engine.counts([ALICE, BOB]) == {
        ALICE: FollowCounts(0, 0),
        BOB: FollowCounts(0, 0),
    }
    assert await graph_engine.following_among(ALICE, [BOB]) == set()
    assert await graph_engine.follow(ALICE, BOB, at_ms=3) is True  # a new edge, a new time
    assert (await graph_engine.following_page(ALICE, 5, None)).edges[0].followed_at_ms == 3


async def test_follow_refuses_self_unknown_and_over_cap(graph_engine: SocialGraph) -> None:
    await make_users(graph_engine, ALICE, BOB, CAROL, DAVE, ERIN, FRANK, GRACE)
    with pytest.raises(CannotFollowSelf):
        await graph_engine.follow(ALICE, ALICE, at_ms=1)
    with pytest.raises(CannotFollowSelf):  # checked before existence
        await graph_engine.follow(NOBODY, NOBODY, at_ms=1)
    with pytest.raises(UnknownUser) as unknown:
        await graph_engine.follow(ALICE, NOBODY, at_ms=1)
    assert unknown.value.args == (NOBODY,)
    with pytest.raises(UnknownUser) as unknown:  # the follower is named first
        await graph_engine.follow(NOBODY, NOBODY + 1, at_ms=1)
    assert unknown.value.args == (NOBODY,)
    with pytest.raises(UnknownUser) as unknown:
        await graph_engine.unfollow(NOBODY, ALICE)
    assert unknown.value.args == (NOBODY,)
    with pytest.raises(UnknownUser) as unknown:
        await graph_engine.unfollow(ALICE, NOBODY)
    assert unknown.value.args == (NOBODY,)
    for followee in (BOB, CAROL, DAVE, ERIN, FRANK):  # the fixture's cap is 5
        await graph_engine.follow(ALICE, followee, at_ms=1)
    with pytest.raises(FollowLimitReached):
        await graph_engine.follow(ALICE, GRACE, at_ms=1)
    assert await graph_engine.follow(ALICE, BOB, at_ms=2) is False  # re-follow at the cap: fine
    assert (await graph_engine.counts([ALICE]))[ALICE].following == 5
    assert await graph_engine.counts([GRACE]) == {GRACE: FollowCounts(0, 0)}
    await graph_engine.unfollow(ALICE, BOB)  # under the cap again
    assert await graph_engine.follow(ALICE, GRACE, at_ms=3) is True


async def test_concurrent_follows_keep_exact_counts(graph_engine: SocialGraph) -> None:
    followers = list(range(2000, 2050))
    await make_users(graph_engine, ALICE, *followers)
    results = await asyncio.gather(
        *(graph_engine.follow(f, ALICE, at_ms=i) for i, f in enumerate(followers)),
        *(graph_engine.follow(f, ALICE, at_ms=i) for i, f in enumerate(followers[:10])),
    )
    assert sum(results) == 50
    assert (await graph_engine.counts([ALICE]))[ALICE] == FollowCounts(followers=50, following=0)
    await asyncio.gather(*(graph_engine.unfollow(f, ALICE) for f in followers + followers[:10]))
    assert (await graph_engine.counts([ALICE]))[ALICE] == FollowCounts(0, 0)


async def test_batch_reads_ignore_unknown_ids(graph_engine: SocialGraph) -> None:
    await make_users(graph_engine, ALICE, BOB, CAROL)
    await graph_engine.follow(ALICE, BOB, at_ms=1)
    assert await graph_engine.counts([]) == {}
    assert await graph_engine.counts([NOBODY, ALICE, ALICE]) == {ALICE: FollowCounts(0, 1)}
    assert await graph_engine.following_among(ALICE, []) == set()
    assert await graph_engine.following_among(ALICE, [NOBODY, BOB, BOB, CAROL]) == {BOB}
    assert await graph_engine.following_among(NOBODY, [ALICE, BOB]) == set()


async def test_pages_are_newest_first_and_complete(graph_engine: SocialGraph) -> None:
    followers = [BOB, CAROL, DAVE, ERIN, FRANK]
    await make_users(graph_engine, ALICE, *followers)
    # BOB and CAROL follow in the same millisecond: the larger id comes first.
    for at_ms, follower in zip([10, 10, 20, 30, 40], followers, strict=True):
        await graph_engine.follow(follower, ALICE, at_ms=at_ms)
    for first in (1, 2, 5, 10):
        assert await all_pages(graph_engine, ALICE, first, followers=True) == [
            FRANK,
            ERIN,
            DAVE,
            CAROL,
            BOB,
        ]
    top = await graph_engine.followers_page(ALICE, first=2, after=None)
    assert top == EdgePage([FollowEdge(FRANK, 40), FollowEdge(ERIN, 30)], has_next_page=True)
    assert top.edges[-1].cursor == EdgeCursor(followed_at_ms=30, user_id=ERIN)
    last = await graph_engine.followers_page(ALICE, first=1, after=EdgeCursor(10, CAROL))
    assert last == EdgePage([FollowEdge(BOB, 10)], has_next_page=False)
    assert await graph_engine.followers_page(ALICE, first=0, after=None) == EdgePage([], True)
    following = await graph_engine.following_page(BOB, first=10, after=None)
    assert following == EdgePage([FollowEdge(ALICE, 10)], has_next_page=False)
    empty = await graph_engine.followers_page(BOB, first=10, after=None)
    assert empty == EdgePage([], has_next_page=False)
    nobody = await graph_engine.following_page(NOBODY, first=10, after=None)
    assert nobody == EdgePage([], has_next_page=False)


async def test_following_page_and_a_cursor_whose_edge_is_gone(graph_engine: SocialGraph) -> None:
    followees = [BOB, CAROL, DAVE, ERIN, FRANK]
    await make_users(graph_engine, ALICE, *followees)
    for at_ms, followee in enumerate(followees):
        await graph_engine.follow(ALICE, followee, at_ms=100 + at_ms)
    assert await all_pages(graph_engine, ALICE, 2, followers=False) == followees[::-1]
    page = await graph_engine.following_page(ALICE, first=2, after=None)
    assert [e.user_id for e in page.edges] == [FRANK, ERIN]
    await graph_engine.unfollow(ALICE, ERIN)  # the cursor's own edge
    rest = await graph_engine.following_page(ALICE, first=5, after=page.edges[-1].cursor)
    assert rest == EdgePage(
        [FollowEdge(DAVE, 102), FollowEdge(CAROL, 101), FollowEdge(BOB, 100)], has_next_page=False
    )


async def test_who_to_follow_ranks_by_mutual_followers(graph_engine: SocialGraph) -> None:
    await make_users(graph_engine, ALICE, BOB, CAROL, DAVE, ERIN, FRANK, GRACE)
    for followee in (BOB, CAROL, DAVE):
        await graph_engine.follow(ALICE, followee, at_ms=1)
    # ERIN is followed by BOB, CAROL and DAVE; GRACE and FRANK by BOB only (the smaller id first);
    # ALICE herself and DAVE (already followed) must never be suggested.
    for follower, followee in [
        (BOB, ERIN),
        (CAROL, ERIN),
        (DAVE, ERIN),
        (BOB, GRACE),
        (BOB, FRANK),
        (BOB, ALICE),
        (CAROL, DAVE),
    ]:
        await graph_engine.follow(follower, followee, at_ms=2)
    assert await graph_engine.who_to_follow(ALICE, first=10) == [
        Suggestion(ERIN, 3),
        Suggestion(FRANK, 1),
        Suggestion(GRACE, 1),
    ]
    assert await graph_engine.who_to_follow(ALICE, first=1) == [Suggestion(ERIN, 3)]
    assert await graph_engine.who_to_follow(ERIN, first=10) == []  # follows no one
    assert await graph_engine.who_to_follow(NOBODY, first=10) == []


# Fan-out and feed building.


async def test_follower_ids_page_ascends_by_id_and_is_complete(graph_engine: SocialGraph) -> None:
    # Ids that a numeric-as-double or a text order without padding would misplace; follow times
    # run against id order, to show pages go by id.
    followers = [7, 1010, 4000, 4001, BIG, BIG + 1, 2**63 - 1]
    await make_users(graph_engine, ALICE, *followers)
    for at_ms, follower in enumerate(reversed(followers)):
        await graph_engine.follow(follower, ALICE, at_ms=at_ms)
    for limit in (1, 3, 7, 100):
        pages = await all_follower_ids(graph_engine, ALICE, limit)
        assert [i for page in pages for i in page] == followers
        assert all(len(page) == limit for page in pages[:-1])
    assert await graph_engine.follower_ids_page(ALICE, 4000, 2) == [4001, BIG]
    assert await graph_engine.follower_ids_page(ALICE, 4002, 2) == [BIG, BIG + 1]
    assert await graph_engine.follower_ids_page(ALICE, 2**63 - 1, 5) == []
    assert await graph_engine.follower_ids_page(7, None, 5) == []  # has no followers
    assert await graph_engine.follower_ids_page(NOBODY, None, 5) == []


async def test_follower_ids_walk_is_not_shifted_by_follows(graph_engine: SocialGraph) -> None:
    followers = list(range(4000, 4012))
    await make_users(graph_engine, ALICE, 3999, 5000, *followers)
    for follower in followers:
        await graph_engine.follow(follower, ALICE, at_ms=1)
    first = await graph_engine.follower_ids_page(ALICE, None, 5)
    assert first == followers[:5]
    # Mid-walk: a newcomer before the cursor, one after it, and a follower not yet seen leaves.
    await graph_engine.follow(3999, ALICE, at_ms=2)
    await graph_engine.follow(5000, ALICE, at_ms=2)
    await graph_engine.unfollow(4007, ALICE)
    rest: list[int] = []
    after = first[-1]
    while page := await graph_engine.follower_ids_page(ALICE, after, 5):
        rest += page
        after = page[-1]
    assert rest == [f for f in followers[5:] if f != 4007] + [5000]


async def test_celebrity_flag(graph_engine: SocialGraph) -> None:
    await make_users(graph_engine, ALICE, BOB, CAROL, DAVE)
    assert await graph_engine.celebrity_status(NOBODY) is None
    assert await graph_engine.celebrity_status(BOB) == (0, False)
    await graph_engine.follow(ALICE, BOB, at_ms=1)
    await graph_engine.follow(CAROL, BOB, at_ms=1)
    assert await graph_engine.celebrity_status(BOB) == (2, False)
    await graph_engine.set_celebrity(BOB, True)
    await graph_engine.set_celebrity(BOB, True)  # idempotent
    assert await graph_engine.celebrity_status(BOB) == (2, True)
    await graph_engine.unfollow(CAROL, BOB)  # counts and the flag are independent
    assert await graph_engine.celebrity_status(BOB) == (1, True)
    await graph_engine.set_celebrity(BOB, False)
    assert await graph_engine.celebrity_status(BOB) == (1, False)
    await graph_engine.set_celebrity(NOBODY, True)  # a no-op
    assert await graph_engine.celebrity_status(NOBODY) is None


async def test_followee_ids_carry_celebrity_flags(graph_engine: SocialGraph) -> None:
    await make_users(graph_engine, ALICE, BOB, CAROL, DAVE, ERIN)
    assert await graph_engine.followee_ids(ALICE) == []
    assert await graph_engine.followee_ids(NOBODY) == []
    for followee in (BOB, CAROL, DAVE):
        await graph_engine.follow(ALICE, followee, at_ms=1)
    await graph_engine.follow(ERIN, ALICE, at_ms=1)  # a follower, not a followee
    await graph_engine.set_celebrity(CAROL, True)
    await graph_engine.set_celebrity(ERIN, True)
    assert sorted(await graph_engine.followee_ids(ALICE)) == [
        (BOB, False),
        (CAROL, True),
        (DAVE, False),
    ]
    await graph_engine.set_celebrity(CAROL, False)
    await graph_engine.unfollow(ALICE, DAVE)
    assert sorted(await graph_engine.followee_ids(ALICE)) == [(BOB, False), (CAROL, False)]


# Seeding.


async def test_bulk_loaders_keep_counts_exact(graph_engine: SocialGraph) -> None:
    users = list(range(3000, 3040))
    await graph_engine.bulk_create_users([(u, f"user{u}") for u in users])
    edges = [(a, b, 1) for a in users for b in users[:10] if a != b]
    await graph_engine.bulk_follow(edges)
    await graph_engine.bulk_follow(edges[:50])  # repeats change nothing
    counts = await graph_engine.counts(users)
    assert counts[users[0]] == FollowCounts(followers=39, following=9)  # over the cap of 5
    assert counts[users[20]] == FollowCounts(followers=0, following=10)
    assert sum(c.following for c in counts.values()) == len(edges)
    assert len(await all_follower_ids(graph_engine, users[0], 7)) == 6  # 39 ids, 7 a page
    followees = await graph_engine.followee_ids(users[20])  # at most the cap of 5
    assert 1 <= len(followees) <= 5 and len(set(followees)) == len(followees)
    assert {user_id for user_id, _ in followees} <= set(users[:10])


async def test_bulk_loaders_skip_repeats_self_follows_and_unknown_ids(
    graph_engine: SocialGraph,
) -> None:
    await graph_engine.bulk_create_users([(ALICE, "alice"), (BOB, "bob"), (ALICE, "again")])
    await graph_engine.bulk_create_users([(BOB, "bob"), (CAROL, "carol")])
    assert await graph_engine.counts([ALICE, BOB, CAROL]) == {
        ALICE: FollowCounts(0, 0),
        BOB: FollowCounts(0, 0),
        CAROL: FollowCounts(0, 0),
    }
    await graph_engine.bulk_follow(
        [
            (ALICE, BOB, 5),
            (ALICE, BOB, 6),  # a repeat within the list: the first is kept
            (ALICE, ALICE, 5),
            (ALICE, NOBODY, 5),
            (NOBODY, BOB, 5),
            (CAROL, BOB, 7),
        ]
    )
    await graph_engine.bulk_follow([(CAROL, BOB, 8)])  # a repeat of an existing edge
    assert await graph_engine.counts([ALICE, BOB, CAROL, NOBODY]) == {
        ALICE: FollowCounts(followers=0, following=1),
        BOB: FollowCounts(followers=2, following=0),
        CAROL: FollowCounts(followers=0, following=1),
    }
    assert await graph_engine.followers_page(BOB, first=5, after=None) == EdgePage(
        [FollowEdge(CAROL, 7), FollowEdge(ALICE, 5)], has_next_page=False
    )
    await graph_engine.bulk_create_users([])
    await graph_engine.bulk_follow([])
