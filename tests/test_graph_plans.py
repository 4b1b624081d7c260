"""How FalkorDB runs the queries whose cost must follow the user's own edges, not the graph's
size (read from GRAPH.EXPLAIN: the first operation that touches nodes)."""

from __future__ import annotations

import uuid

import pytest

from graph import cypher
from tests.conftest import RedisServer

PARAMS = "CYPHER id='1' ids=['1'] after='' after_id='' at=0 sample=5 limit=10 "


def starts_from_the_user(plan: list[bytes], user: str) -> bool:
    """Whether the index scan that opens the plan finds `user` (one node), not every user."""
    scans = [step.decode().strip() for step in plan if b"Index Scan" in step]
    return len(scans) == 1 and scans[0].endswith(f"({user}:User)")


@pytest.mark.parametrize(
    ("query", "user"),
    [
        (cypher.FOLLOWER_IDS_PAGE, "a"),  # fan-out: once scanned every user (issue 11 bench)
        (cypher.FOLLOWERS_PAGE, "u"),
        (cypher.FOLLOWING_PAGE, "u"),
        (cypher.WHO_TO_FOLLOW, "me"),
    ],
)
def test_per_user_queries_start_from_that_user(
    falkordb_server: RedisServer, query: str, user: str
) -> None:
    client = falkordb_server.client()
    graph = f"plans-{uuid.uuid4().hex[:8]}"
    try:
        client.execute_command("GRAPH.QUERY", graph, "CREATE INDEX FOR (u:User) ON (u.id)")
        plan = client.execute_command("GRAPH.EXPLAIN", graph, PARAMS + query)
        assert starts_from_the_user(plan, user), plan
    finally:
        client.execute_command("GRAPH.DELETE", graph)
        client.close()
