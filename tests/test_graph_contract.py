"""The social-graph contract, run against every engine (see conftest.graph_engine)."""

from __future__ import annotations

import asyncio

import pytest

from graph.cypher import CypherGraph
from graph.port import (
    CannotFollowSelf,
    EdgeCursor,
    FollowCounts,
    FollowLimitReached,
    Suggestion,
    UnknownUser,
)

ALICE, BOB, CAROL, DAVE, ERIN, FRANK, GRACE = range(1001, 1008)


async def make_users(graph: CypherGraph, *ids: int) -> None:
    for user_id in ids:
        await graph.create_user(user_id, f"user{user_id}")


async def test_create_user_is_idempotent(graph_engine: CypherGraph) -> None:
    await make_users(graph_engine, ALICE, ALICE)
    assert await graph_engine.counts([ALICE]) == {ALICE: FollowCounts(0, 0)}


async def test_follow_counts_and_idempotence(graph_engine: CypherGraph) -> None:
    await make_users(graph_engine, ALICE, BOB)
    assert await graph_engine.follow(ALICE, BOB, at_ms=1) is True
    assert await graph_engine.follow(ALICE, BOB, at_ms=2) is False
    assert await graph_engine.counts([ALICE, BOB]) == {
        ALICE: FollowCounts(followers=0, following=1),
        BOB: FollowCounts(followers=1, following=0),
    }
    assert await graph_engine.following_among(ALICE, [BOB, CAROL]) == {BOB}
    assert await graph_engine.unfollow(ALICE, BOB) is True
    assert await graph_engine.unfollow(ALICE, BOB) is False
    assert await graph_engine.counts([ALICE, BOB]) == {
        ALICE: FollowCounts(0, 0),
        BOB: FollowCounts(0, 0),
    }
    assert await graph_engine.following_among(ALICE, [BOB]) == set()


async def test_follow_refuses_self_unknown_and_over_cap(graph_engine: CypherGraph) -> None:
    await make_users(graph_engine, ALICE, BOB, CAROL, DAVE, ERIN, FRANK, GRACE)
    with pytest.raises(CannotFollowSelf):
        await graph_engine.follow(ALICE, ALICE, at_ms=1)
    with pytest.raises(UnknownUser):
        await graph_engine.follow(ALICE, 9999, at_ms=1)
    with pytest.raises(UnknownUser):
        await graph_engine.unfollow(9999, ALICE)
    for followee in (BOB, CAROL, DAVE, ERIN, FRANK):  # the fixture's cap is 5
        await graph_engine.follow(ALICE, followee, at_ms=1)
    with pytest.raises(FollowLimitReached):
        await graph_engine.follow(ALICE, GRACE, at_ms=1)
    assert await graph_engine.follow(ALICE, BOB, at_ms=2) is False  # re-follow at the cap: fine
    assert (await graph_engine.counts([ALICE]))[ALICE].following == 5


async def test_pages_are_newest_first_and_complete(graph_engine: CypherGraph) -> None:
    followers = [BOB, CAROL, DAVE, ERIN, FRANK]
    await make_users(graph_engine, ALICE, *followers)
    # BOB and CAROL follow in the same millisecond: the id breaks the tie.
    for at_ms, follower in zip([10, 10, 20, 30, 40], followers, strict=True):
        await graph_engine.follow(follower, ALICE, at_ms=at_ms)
    seen: list[int] = []
    cursor: EdgeCursor | None = None
    while True:
        page = await graph_engine.followers_page(ALICE, first=2, after=cursor)
        seen += [edge.user_id for edge in page.edges]
        if not page.has_next_page:
            break
        cursor = page.edges[-1].cursor
    assert seen == [FRANK, ERIN, DAVE, CAROL, BOB]
    following = await graph_engine.following_page(BOB, first=10, after=None)
    assert [edge.user_id for edge in following.edges] == [ALICE]
    assert following.edges[0].followed_at_ms == 10
    assert not following.has_next_page
    empty = await graph_engine.followers_page(BOB, first=10, after=None)
    assert empty.edges == [] and not empty.has_next_page


async def test_who_to_follow_ranks_by_mutual_followers(graph_engine: CypherGraph) -> None:
    await make_users(graph_engine, ALICE, BOB, CAROL, DAVE, ERIN, FRANK)
    for followee in (BOB, CAROL, DAVE):
        await graph_engine.follow(ALICE, followee, at_ms=1)
    # ERIN is followed by BOB, CAROL and DAVE; FRANK by BOB only; ALICE herself and DAVE (already
    # followed) must never be suggested.
    for follower, followee in [
        (BOB, ERIN),
        (CAROL, ERIN),
        (DAVE, ERIN),
        (BOB, FRANK),
        (BOB, ALICE),
        (CAROL, DAVE),
    ]:
        await graph_engine.follow(follower, followee, at_ms=2)
    assert await graph_engine.who_to_follow(ALICE, first=10) == [
        Suggestion(ERIN, 3),
        Suggestion(FRANK, 1),
    ]
    assert await graph_engine.who_to_follow(ALICE, first=1) == [Suggestion(ERIN, 3)]


async def test_concurrent_follows_keep_exact_counts(graph_engine: CypherGraph) -> None:
    followers = list(range(2000, 2050))
    await make_users(graph_engine, ALICE, *followers)
    results = await asyncio.gather(
        *(graph_engine.follow(f, ALICE, at_ms=i) for i, f in enumerate(followers)),
        *(graph_engine.follow(f, ALICE, at_ms=i) for i, f in enumerate(followers[:10])),
    )
    assert sum(results) == 50
    assert (await graph_engine.counts([ALICE]))[ALICE] == FollowCounts(followers=50, following=0)


async def test_delete_user_removes_node_and_edges(graph_engine: CypherGraph) -> None:
    await make_users(graph_engine, ALICE, BOB)
    await graph_engine.follow(ALICE, BOB, at_ms=1)
    await graph_engine.delete_user(BOB)
    assert await graph_engine.counts([BOB]) == {}
    assert (await graph_engine.following_page(ALICE, first=5, after=None)).edges == []


async def test_ids_above_two_to_the_53_stay_distinct(graph_engine: CypherGraph) -> None:
    big = 383_779_814_237_900_800  # a real snowflake id; big + 1 is the same double
    await make_users(graph_engine, big, big + 1)
    await graph_engine.follow(big, big + 1, at_ms=1)
    assert await graph_engine.counts([big, big + 1]) == {
        big: FollowCounts(followers=0, following=1),
        big + 1: FollowCounts(followers=1, following=0),
    }
    assert await graph_engine.following_among(big, [big + 1]) == {big + 1}


async def test_bulk_loaders_keep_counts_exact(graph_engine: CypherGraph) -> None:
    users = list(range(3000, 3040))
    await graph_engine.bulk_create_users([(u, f"user{u}") for u in users])
    edges = [(a, b, 1) for a in users for b in users[:10] if a != b]
    await graph_engine.bulk_follow(edges)
    await graph_engine.bulk_follow(edges[:50])  # repeats change nothing
    counts = await graph_engine.counts(users)
    assert counts[users[0]] == FollowCounts(followers=39, following=9)
    assert counts[users[20]] == FollowCounts(followers=0, following=10)
    assert sum(c.following for c in counts.values()) == len(edges)


async def test_fan_out_reads(graph_engine: CypherGraph) -> None:
    followers = list(range(4000, 4012))
    await graph_engine.bulk_create_users([(u, f"u{u}") for u in [ALICE, BOB, *followers]])
    await graph_engine.bulk_follow([(f, ALICE, 1) for f in followers] + [(ALICE, BOB, 1)])
    pages, after = [], None
    while page := await graph_engine.follower_ids_page(ALICE, after, 5):
        pages.append(page)
        after = page[-1]
    assert [len(p) for p in pages] == [5, 5, 2]
    assert [i for p in pages for i in p] == followers
    assert await graph_engine.celebrity_status(ALICE) == (12, False)
    await graph_engine.set_celebrity(BOB, True)
    assert await graph_engine.followee_ids(ALICE) == [(BOB, True)]
    assert await graph_engine.celebrity_status(9999) is None
