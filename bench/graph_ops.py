"""Social-graph operations on Reed98, on each engine: FalkorDB (Redis protocol) and the Neo4j
adapter over Bolt (FalkorDB's listener, so this measures our driver path, not Neo4j)."""

from __future__ import annotations

import random
import tempfile
import time
from functools import partial
from pathlib import Path

from bench.data import reed98_follows
from bench.stats import summary_ms, timed
from devstack.servers import LOOPBACK, free_bolt_port, free_port, start_redis
from graph.falkordb_store import FalkorDBGraph
from graph.neo4j_store import Neo4jGraph
from graph.port import SocialGraph

SAMPLES = 300


async def measure(name: str, graph: SocialGraph) -> None:
    users, edges = reed98_follows()
    rng = random.Random(7)
    started = time.perf_counter()
    await graph.bulk_create_users([(u, f"r{u % 10**6}") for u in users])
    await graph.bulk_follow([(a, b, i) for i, (a, b) in enumerate(edges)])
    load = time.perf_counter() - started
    print(f"[{name}] bulk load: {len(users)} users + {len(edges)} follows in {load:.2f} s "
          f"({len(edges) / load:,.0f} follows/s)")  # fmt: skip

    sample = [rng.choice(users) for _ in range(SAMPLES)]
    newcomers = list(range(1, SAMPLES + 1))
    await graph.bulk_create_users([(u, f"new{u}") for u in newcomers])
    follows = await timed(
        [partial(graph.follow, a, b, at_ms=1) for a, b in zip(newcomers, sample, strict=True)]
    )
    print(f"[{name}] follow (single statement): {summary_ms(follows)}")
    pages = await timed([partial(graph.followers_page, u, 20, None) for u in sample])
    print(f"[{name}] followers page of 20: {summary_ms(pages)}")
    batches = [sample[i : i + 20] for i in range(0, SAMPLES, 20)]
    counts = await timed([partial(graph.counts, b) for b in batches])
    print(f"[{name}] counts of 20 users (one query): {summary_ms(counts)}")
    suggestions = await timed([partial(graph.who_to_follow, u, 10) for u in sample[:100]])
    print(f"[{name}] whoToFollow(10): {summary_ms(suggestions)}")


async def run() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port, bolt_port = free_port(), free_bolt_port()
        server = start_redis("bench-graph", port, Path(tmp), falkordb=True, bolt_port=bolt_port,
                             appendonly=False)  # fmt: skip
        try:
            falkordb = FalkorDBGraph(f"redis://{LOOPBACK}:{port}", "bench", timeout_seconds=30,
                                     max_following=5000)  # fmt: skip
            await falkordb.ensure_schema()
            await measure("falkordb", falkordb)
            await falkordb.close()
            # The Bolt listener serves the graph "falkordb"; index it through the Redis port.
            admin = FalkorDBGraph(f"redis://{LOOPBACK}:{port}", "falkordb", timeout_seconds=30,
                                  max_following=5000)  # fmt: skip
            await admin.ensure_schema()
            await admin.close()
            # Listener quirks (see tests/conftest.py): no READ routing, small batches, and no
            # clean close: the server is killed below instead of closing the driver.
            bolt = Neo4jGraph(f"bolt://{LOOPBACK}:{bolt_port}", auth=None, database=None,
                              timeout_seconds=30, max_following=5000, route_reads=False,
                              bulk_batch_size=40)  # fmt: skip
            await measure("neo4j-adapter/bolt", bolt)
        finally:
            server.kill()
