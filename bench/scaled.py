"""Scaled-topology figures: feed inserts on one master vs a 3-master Redis Cluster, fan-out delivery
with one vs two worker processes, and FalkorDB replication lag under a follow/unfollow load.

Everything shares one machine (2 cores on the development box): the servers, the workers and this
process. Three redis-server processes on two cores cannot triple a figure; the figures say what
the machine was doing (busy cores before and during each run) so that a ratio can be read against
it. Every ratio's two sides are measured in this one run, interleaved."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from auth.tokens import TokenIssuer
from bench.feeds import CREATE_TWEET, _post
from bench.procstat import CpuMeter, busy_cores
from bench.read_path import machine
from bench.seed import Shape, seed, user_id
from bench.stack import ROOT, Stack
from bench.stats import percentile
from devstack.cluster import start_cluster
from devstack.servers import (
    FEED_REDIS_OPTIONS,
    LOOPBACK,
    ManagedProcess,
    free_port,
    start_redis,
)
from graph.factory import open_graph
from resolvers.ids import parse_tweet_global_id
from settings import Settings
from social.fanout_plan import batches, live_event
from storage.accounts import AccountStore
from storage.fanout_stats import FanoutStats
from storage.feeds import FeedCache, FeedRef, open_feed_cache
from storage.redis_clients import open_redis
from storage.tweets import TweetStore

CALLERS = 4  # concurrent push_to_feeds callers
FULL_FEEDS, SMALL_FEEDS = 100_000, 20_000
ROUNDS = 2  # of each side of a ratio, interleaved
WORKER_THREADS = 8
LAG_SAMPLE_SECONDS = 0.05
GRAPH_USERS = 2_000
GRAPH_WRITERS = 8


async def run(small: bool = False) -> None:
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        await insert_figures(Path(tmp) / "inserts", SMALL_FEEDS if small else FULL_FEEDS)
        await fan_out_figures(
            Path(tmp) / "fanout", Shape(11_000, 10_000, 2_000) if small else Shape()
        )
        await replication_figures(Path(tmp) / "replication", 4.0 if small else 10.0)
    print(f"after: {busy_cores():.2f} cores busy with other work")


# -- 1. feed inserts: one master vs a 3-master cluster ------------------------------------------


async def insert_figures(work: Path, feeds_count: int) -> None:
    settings = Settings(jwt_secret=secrets.token_urlsafe(40))
    single_port = free_port()
    servers = [start_redis("single", single_port, work / "single", appendonly=False,
                           extra=FEED_REDIS_OPTIONS)]  # fmt: skip
    ports = [free_port() for _ in range(3)]
    bus_ports = [free_port() for _ in range(3)]
    try:
        start_cluster("feeds", ports, bus_ports, work / "cluster", children=servers, masters=3,
                      appendonly=False, extra=FEED_REDIS_OPTIONS)  # fmt: skip
        targets = {
            "one master": (
                replace(settings, feed_redis_url=f"redis://{LOOPBACK}:{single_port}/0"),
                [servers[0].pid],
            ),
            "3-master cluster": (
                replace(settings, feed_redis_url=f"redis://{LOOPBACK}:{ports[0]}",
                        feed_redis_cluster=True),
                [s.pid for s in servers[1:]],
            ),
        }  # fmt: skip
        audience = [user_id(i) for i in range(1, feeds_count + 1)]
        caches = {}
        for name, (target, _) in targets.items():
            cache = open_feed_cache(replace(target, redis_timeout_seconds=30))
            for chunk in batches(audience, 10_000):
                await cache.create_empty(chunk)
            caches[name] = cache
        print(f"feed inserts: {feeds_count:,} active feeds per target, batches of "
              f"{settings.fanout_batch_size:,} viewers, {CALLERS} concurrent callers; "
              f"{busy_cores():.2f} cores busy with other work before")  # fmt: skip
        rates: dict[str, list[float]] = {name: [] for name in targets}
        for round_ in range(ROUNDS):
            for name, (_, pids) in targets.items():
                meter = CpuMeter({"redis": pids, "client": [os.getpid()]})
                meter.start()
                rate = await _push_all(caches[name], audience, settings.fanout_batch_size, round_)
                meter.stop()
                rates[name].append(rate)
                print(f"  {name}, round {round_ + 1}: {rate:,.0f} inserts/s; CPU redis "
                      f"{meter.seconds['redis']:.2f} s, client {meter.seconds['client']:.2f} s; "
                      f"{meter.machine()}")  # fmt: skip
        best = {name: max(values) for name, values in rates.items()}
        print(f"feed inserts/s, best of {ROUNDS}: one master {best['one master']:,.0f}, "
              f"3-master cluster {best['3-master cluster']:,.0f}; ratio "
              f"{best['3-master cluster'] / best['one master']:.2f} (3 servers and the client "
              f"share {os.cpu_count()} cores: no tripling possible here)")  # fmt: skip
        for cache in caches.values():
            await cache.client.aclose()
    finally:
        for server in reversed(servers):
            server.stop()


async def _push_all(cache: FeedCache, audience: list[int], batch_size: int, round_: int) -> float:
    """Push one tweet to every feed, CALLERS batches at a time; inserts per second."""
    ref = FeedRef(tweet_id=2**62 + round_, author_id=user_id(0))
    event = live_event("tweet", ref.author_id, ref.tweet_id)
    queue = list(batches(audience, batch_size))
    inserted = 0

    async def caller() -> None:
        nonlocal inserted
        while queue:
            gained = await cache.push_to_feeds(ref, queue.pop(), event)
            inserted += gained  # not `inserted += await ...`: that reads `inserted` first

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    seconds = time.perf_counter() - started
    if inserted != len(audience):
        print(f"  (only {inserted:,} of {len(audience):,} feeds gained the tweet)")
    return inserted / seconds


# -- 2. fan-out delivery: one vs two worker processes -------------------------------------------


async def fan_out_figures(work: Path, shape: Shape) -> None:
    stack = Stack.start(work, celebrity_followers=10 * shape.top_audience)
    workers: list[ManagedProcess] = []
    try:
        settings = stack.settings
        graph = open_graph(settings)
        documents = open_redis(settings.documents_redis_url, timeout_seconds=30)
        feeds = open_feed_cache(replace(settings, redis_timeout_seconds=30))
        await graph.ensure_schema()
        seeded = await seed(shape, graph, AccountStore(documents),
                            TweetStore(documents, idempotency_ttl_seconds=60))  # fmt: skip
        audience = [user_id(i) for i in range(1, shape.top_audience + 1)]
        await feeds.create_empty(audience)
        command = f"python -m fanout --processes 1 --threads {WORKER_THREADS}"
        print(f"fan-out: {seeded['users']:,} users, the top author's {len(audience):,} "
              f"followers active; each worker `{command}`; {busy_cores():.2f} cores busy with "
              f"other work before")  # fmt: skip
        stack.start_api()
        stats = FanoutStats(feeds.client)
        token = TokenIssuer(settings.jwt_secret, 3600).issue(user_id(0), 0)
        rates: dict[int, list[float]] = {1: [], 2: []}
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=120) as client:
            for round_ in range(ROUNDS):
                for count in (1, 2):
                    workers = [_start_worker(stack, f"worker{i}") for i in range(count)]
                    await asyncio.sleep(2)  # the workers connect to the broker
                    meter = CpuMeter({"workers": [w.pid for w in workers]})
                    meter.start()
                    result = await _one_fan_out(client, stats, token, len(audience), round_)
                    meter.stop()
                    for worker in workers:
                        worker.stop()
                    workers = []
                    rates[count].append(result.delivery)
                    print(f"  {count} worker(s), round {round_ + 1}: delivery "
                          f"{result.delivery:,.0f} inserts/s, end to end {result.end_to_end:,.0f}"
                          f" inserts/s ({result.seconds:.2f} s); workers' CPU "
                          f"{meter.seconds['workers']:.2f} s; {meter.machine()}")  # fmt: skip
        best = {count: max(values) for count, values in rates.items()}
        print(f"fan-out delivery, best of {ROUNDS}: 1 worker {best[1]:,.0f} inserts/s, 2 workers "
              f"{best[2]:,.0f} inserts/s; ratio {best[2] / best[1]:.2f}")  # fmt: skip
        await graph.close()
        await documents.aclose()
        await feeds.client.aclose()
    finally:
        for worker in workers:
            worker.stop()
        stack.stop()


def _start_worker(stack: Stack, name: str) -> ManagedProcess:
    argv = [sys.executable, "-m", "fanout", "--processes", "1", "--threads", str(WORKER_THREADS)]
    return ManagedProcess(name, argv, env=stack.env(), cwd=ROOT,
                          log_path=stack.work_dir / f"{name}.log")  # fmt: skip


@dataclass
class FanOut:
    delivery: float  # inserts/s from the first batch done to the last
    end_to_end: float  # inserts/s from createTweet returned to the last batch
    seconds: float


async def _one_fan_out(
    client: httpx.AsyncClient, stats: FanoutStats, token: str, audience: int, round_: int
) -> FanOut:
    body = await _post(client, CREATE_TWEET, {"text": f"scaled {round_} {time.time()}"}, token)
    returned_ms = time.time() * 1000
    _, tweet_id = parse_tweet_global_id(body["createTweet"]["id"])
    deadline = time.monotonic() + 600
    records = []
    while time.monotonic() < deadline:
        records = await stats.batches_of(tweet_id)
        if sum(r.followers for r in records) >= audience:
            break
        await asyncio.sleep(0.1)
    inserts = sum(r.inserted for r in records)
    finishes = sorted(r.finished_ms for r in records)
    span = max(1.0, finishes[-1] - returned_ms)
    first = min(records, key=lambda r: r.finished_ms)
    delivery = (inserts - first.inserted) / max(1, finishes[-1] - finishes[0]) * 1000
    return FanOut(delivery, inserts / span * 1000, span / 1000)


# -- 3. graph replication lag under write load --------------------------------------------------


async def replication_figures(work: Path, seconds: float) -> None:
    primary_port, replica_port = free_port(), free_port()
    servers = [
        start_redis("graph", primary_port, work / "primary", falkordb=True, appendonly=False),
        start_redis("graph-replica", replica_port, work / "replica", falkordb=True,
                    appendonly=False),
    ]  # fmt: skip
    primary = aioredis.Redis(host=LOOPBACK, port=primary_port)
    replica = aioredis.Redis(host=LOOPBACK, port=replica_port)
    try:
        settings = replace(
            Settings(jwt_secret=secrets.token_urlsafe(40)),
            falkordb_url=f"redis://{LOOPBACK}:{primary_port}",
            falkordb_replica_url=f"redis://{LOOPBACK}:{replica_port}",
        )
        graph = open_graph(settings)
        await graph.ensure_schema()
        await graph.bulk_create_users([(user_id(i), f"g{i}") for i in range(GRAPH_USERS)])
        await replica.execute_command("REPLICAOF", LOOPBACK, str(primary_port))
        deadline = time.monotonic() + 60
        while (await replica.info("replication")).get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise RuntimeError("the graph replica did not sync")
            await asyncio.sleep(0.1)
        print(f"graph replication: FalkorDB primary + replica, {GRAPH_USERS:,} users, "
              f"{GRAPH_WRITERS} concurrent writers of follow/unfollow through the adapter for "
              f"{seconds:g} s; {busy_cores():.2f} cores busy with other work before")  # fmt: skip
        stop = asyncio.Event()
        writes = 0

        async def writer(seed_: int) -> None:
            nonlocal writes
            rng = random.Random(seed_)
            while not stop.is_set():
                a, b = rng.sample(range(GRAPH_USERS), 2)
                if rng.random() < 0.6:
                    await graph.follow(user_id(a), user_id(b), int(time.time() * 1000))
                else:
                    await graph.unfollow(user_id(a), user_id(b))
                writes += 1

        lag_bytes: list[float] = []

        async def sampler() -> None:
            while not stop.is_set():
                # Both asked at once; a replica answering after a write the primary's answer
                # predates reads as a negative lag: counted as 0.
                master, slave = await asyncio.gather(
                    primary.info("replication"), replica.info("replication")
                )
                lag = int(master["master_repl_offset"]) - int(slave["slave_repl_offset"])
                lag_bytes.append(max(0, lag))
                await asyncio.sleep(LAG_SAMPLE_SECONDS)

        lag_ms: list[float] = []

        async def marker() -> None:
            index = 0
            while not stop.is_set():
                key = f"bench:marker:{index}"
                await primary.set(key, b"1", ex=60)
                started = time.perf_counter()
                while await replica.exists(key) == 0:  # noqa: ASYNC110 (polling another server)
                    await asyncio.sleep(0.0005)
                lag_ms.append((time.perf_counter() - started) * 1000)
                index += 1
                await asyncio.sleep(LAG_SAMPLE_SECONDS)

        meter = CpuMeter({"primary": [servers[0].pid], "replica": [servers[1].pid]})
        meter.start()
        tasks = [asyncio.create_task(writer(i)) for i in range(GRAPH_WRITERS)]
        tasks += [asyncio.create_task(sampler()), asyncio.create_task(marker())]
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
        meter.stop()
        await graph.close()
        print(f"  {writes / seconds:,.0f} follow/unfollow writes/s; CPU primary "
              f"{meter.seconds['primary']:.2f} s, replica {meter.seconds['replica']:.2f} s; "
              f"{meter.machine()}")  # fmt: skip
        print(f"replication lag in bytes (primary master_repl_offset - replica "
              f"slave_repl_offset, sampled together, negatives as 0; {len(lag_bytes)} samples "
              f"every "
              f"{LAG_SAMPLE_SECONDS * 1000:.0f} ms): p50 {percentile(lag_bytes, 0.5):,.0f}, "
              f"p99 {percentile(lag_bytes, 0.99):,.0f}, max {max(lag_bytes):,.0f}")  # fmt: skip
        print(f"replication lag in time (marker key set on the primary -> seen on the replica, "
              f"{len(lag_ms)} markers; includes the 0.5 ms poll): p50 "
              f"{percentile(lag_ms, 0.5):.2f} ms, p99 {percentile(lag_ms, 0.99):.2f} ms, max "
              f"{max(lag_ms):.2f} ms")  # fmt: skip
    finally:
        await primary.aclose()
        await replica.aclose()
        for server in reversed(servers):
            server.stop()
