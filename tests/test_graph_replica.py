"""Graph reads from a FalkorDB replica (FALKORDB_REPLICA_URL), on a real primary + replica pair:
what is read where (counted by the servers themselves, INFO commandstats), read-your-writes for
the users whose follows just changed, and falling back to the primary when the replica is gone."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from graph.falkordb_store import FalkorDBGraph
from graph.port import FollowCounts, GraphUnavailable
from settings import Settings
from tests.gql import FOLLOW, gql, sign_up
from tests.replicas import Node, calls, start_node, stopped, wait_caught_up, wait_link_up
from tests.servers import serve_api

A, B, C, D = 11, 12, 13, 14
RO = "graph.RO_QUERY"
RW = "graph.QUERY"


def open_graph(
    primary: Node, replica_url: str, *, fresh_ms: int = 5000, timeout: float = 2.0
) -> FalkorDBGraph:
    return FalkorDBGraph(
        primary.url,
        f"replica-test-{uuid.uuid4().hex[:8]}",
        timeout_seconds=timeout,
        max_following=100,
        replica_url=replica_url,
        fresh_ms=fresh_ms,
        replica_retry_seconds=60,
    )


async def seeded(graph: FalkorDBGraph) -> FalkorDBGraph:
    """Users A-D; C follows D (seeded: no write marker)."""
    await graph.ensure_schema()
    await graph.bulk_create_users([(A, "a"), (B, "b"), (C, "c"), (D, "d")])
    await graph.bulk_follow([(C, D, 1000)])
    return graph


@pytest.fixture
async def graph(graph_pair: tuple[Node, Node]) -> AsyncIterator[FalkorDBGraph]:
    primary, replica = graph_pair
    store = await seeded(open_graph(primary, replica.url, fresh_ms=600))
    wait_caught_up(primary, replica)
    yield store
    await store.close()


async def test_lists_counts_suggestions_and_follower_pages_read_from_the_replica(
    graph: FalkorDBGraph, graph_pair: tuple[Node, Node]
) -> None:
    primary, replica = graph_pair
    before = calls(replica, RO), calls(primary, RO), calls(primary, RW)
    assert [e.user_id for e in (await graph.following_page(C, 10, None)).edges] == [D]
    assert [e.user_id for e in (await graph.followers_page(D, 10, None)).edges] == [C]
    assert await graph.counts([C, D]) == {C: FollowCounts(0, 1), D: FollowCounts(1, 0)}
    assert await graph.who_to_follow(A, 10) == []
    assert await graph.follower_ids_page(D, None, 10) == [C]
    after = calls(replica, RO), calls(primary, RO), calls(primary, RW)
    # Five queries ran on the replica, none on the primary (which only answered EXISTS for the
    # write markers).
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (5, 0, 0)

    # What decides a write or a visibility check stays on the primary.
    assert await graph.following_among(C, [D]) == {D}
    assert await graph.followee_ids(C) == [(D, False)]
    assert await graph.celebrity_status(D) == (1, False)
    assert calls(replica, RO) == after[0]
    assert calls(primary, RO) == after[1] + 3

    lag = await graph.replication_lag()
    assert lag.link_up and lag.lag_bytes >= 0


async def test_a_follow_is_seen_at_once_by_reads_about_either_user(
    graph: FalkorDBGraph, graph_pair: tuple[Node, Node]
) -> None:
    """The replica is cut off (REPLICAOF NO ONE: it answers reads but gets no more writes), so
    anything read from it is visibly stale."""
    primary, replica = graph_pair
    with replica.client() as admin:
        admin.execute_command("REPLICAOF", "NO", "ONE")
        try:
            assert await graph.follow(A, B, at_ms=2000)
            # The acting user's list and counts, and the followee's, come from the primary.
            assert [e.user_id for e in (await graph.following_page(A, 10, None)).edges] == [B]
            assert [e.user_id for e in (await graph.followers_page(B, 10, None)).edges] == [A]
            assert await graph.counts([A, B]) == {A: FollowCounts(0, 1), B: FollowCounts(1, 0)}
            assert await graph.follower_ids_page(B, None, 10) == [A]

            # A write with no marker (seeding) is seen by others only once replicated: here
            # never, the replica being cut off. This is what other clients may observe for
            # up to the replication lag.
            await graph.bulk_follow([(D, C, 3000)])
            assert (await graph.following_page(D, 10, None)).edges == []
            assert await graph.counts([D]) == {D: FollowCounts(1, 0)}

            # Past FRESH_MS the marker is gone and reads about A go back to the replica.
            await asyncio.sleep(0.7)
            assert (await graph.following_page(A, 10, None)).edges == []
        finally:
            admin.execute_command("REPLICAOF", "127.0.0.1", str(primary.port))
    wait_link_up(replica)
    wait_caught_up(primary, replica)
    assert [e.user_id for e in (await graph.following_page(A, 10, None)).edges] == [B]
    assert [e.user_id for e in (await graph.following_page(D, 10, None)).edges] == [C]


async def test_an_unfollow_is_seen_at_once_too(
    graph: FalkorDBGraph, graph_pair: tuple[Node, Node]
) -> None:
    primary, replica = graph_pair
    with replica.client() as admin:
        admin.execute_command("REPLICAOF", "NO", "ONE")
        try:
            assert await graph.unfollow(C, D)
            assert (await graph.following_page(C, 10, None)).edges == []
            assert await graph.counts([C, D]) == {C: FollowCounts(0, 0), D: FollowCounts(0, 0)}
            assert await graph.follower_ids_page(D, None, 10) == []
        finally:
            admin.execute_command("REPLICAOF", "127.0.0.1", str(primary.port))
    wait_link_up(replica)


@pytest.fixture
def spare_replica(graph_pair: tuple[Node, Node], tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    """A replica of its own (this test kills it): (primary, replica)."""
    primary, _ = graph_pair
    replica = start_node(tmp_path, "graph-spare-replica", falkordb=True, primary=primary)
    yield primary, replica
    replica.process.kill()


async def test_reads_fall_back_to_the_primary_when_the_replica_is_killed(
    spare_replica: tuple[Node, Node], caplog: pytest.LogCaptureFixture
) -> None:
    primary, replica = spare_replica
    graph = await seeded(open_graph(primary, replica.url))
    try:
        wait_caught_up(primary, replica)
        await graph.following_page(C, 10, None)
        assert calls(replica, RO) == 1

        replica.process.kill()  # SIGKILL: connections refused from now on
        before = calls(primary, RO)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="graph.falkordb_store"):
            for _ in range(3):
                assert [e.user_id for e in (await graph.following_page(C, 10, None)).edges] == [D]
                assert await graph.counts([D]) == {D: FollowCounts(1, 0)}
                assert await graph.follower_ids_page(D, None, 10) == [C]
        assert time.monotonic() - started < 2  # refused at once, then skipped: no timeouts
        assert calls(primary, RO) == before + 9
        warnings = [r for r in caplog.records if "replica" in r.getMessage()]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]  # logged once
        with pytest.raises(GraphUnavailable):
            await graph.replication_lag()
    finally:
        await graph.close()


async def test_a_replica_that_hangs_costs_one_timeout_then_is_skipped(
    spare_replica: tuple[Node, Node],
) -> None:
    primary, replica = spare_replica
    graph = await seeded(open_graph(primary, replica.url, timeout=0.3))
    try:
        wait_caught_up(primary, replica)
        assert await graph.counts([C]) == {C: FollowCounts(0, 1)}  # connected, from the replica
        with stopped(replica):
            started = time.monotonic()
            assert await graph.counts([C]) == {C: FollowCounts(0, 1)}
            assert 0.3 <= time.monotonic() - started < 1.5  # one timeout, then the primary
            started = time.monotonic()
            assert await graph.counts([C]) == {C: FollowCounts(0, 1)}
            assert time.monotonic() - started < 0.2  # skipped: straight to the primary
    finally:
        await graph.close()


VIEWER_FOLLOWING = """
{ viewer { username followingCount following(first: 10) { edges { node { username } } } } }
"""
USER_FOLLOWERS = """
query($u: String!) {
  user(username: $u) { followersCount followers(first: 10) { edges { node { username } } } }
}
"""


async def test_through_the_api_your_own_follow_shows_at_once(
    settings: Settings, graph_pair: tuple[Node, Node]
) -> None:
    """The app on a primary + replica (FALKORDB_REPLICA_URL); the replica is cut off while the
    viewer follows someone, so only the primary can show the new edge."""
    primary, replica = graph_pair
    on_pair = replace(settings, falkordb_url=primary.url, falkordb_replica_url=replica.url)
    with serve_api(on_pair) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            alice, _ = await sign_up(client, "alice")
            _, bob_id = await sign_up(client, "bob")
            wait_caught_up(primary, replica)
            metrics = (await client.get("/metrics")).text
            assert "graph_replica_link_up 1.0" in metrics
            assert re.search(r"^graph_replica_lag_bytes \d", metrics, re.MULTILINE)
            with replica.client() as admin:
                admin.execute_command("REPLICAOF", "NO", "ONE")
                try:
                    await gql(client, FOLLOW, {"id": bob_id}, token=alice)
                    mine = (await gql(client, VIEWER_FOLLOWING, token=alice))["viewer"]
                    assert mine["followingCount"] == 1
                    assert [e["node"]["username"] for e in mine["following"]["edges"]] == ["bob"]
                    bob = (await gql(client, USER_FOLLOWERS, {"u": "bob"}, token=alice))["user"]
                    assert bob["followersCount"] == 1
                    assert [e["node"]["username"] for e in bob["followers"]["edges"]] == ["alice"]
                    metrics = (await client.get("/metrics")).text
                    assert "graph_replica_link_up 0.0" in metrics
                finally:
                    admin.execute_command("REPLICAOF", "127.0.0.1", str(primary.port))
            wait_link_up(replica)
