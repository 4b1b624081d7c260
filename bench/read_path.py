"""The home-feed read path, measured honestly (issue 11): full 20-tweet pages with authors, load
from wrk (a C client far cheaper than the server), the server's CPU per request read from /proc,
and a floor that makes the same store calls and returns the same bytes without GraphQL.

Figures, each printed with its target:
  - pages: every reader's page holds 20 tweets with authors (asserted on every warm-up read,
    and by the wrk script on every measured response);
  - GraphQL vs the floor with one API process: req/s, p50/p99, server CPU per request (target
    <= 1.5 ms), GraphQL's overhead above the floor (target <= 0.5 ms);
  - the same with two API processes (WEB_CONCURRENCY=2), against the raw Redis page read (the
    floor's store calls in-process, no HTTP): ratio target >= 0.25.
Everything shares one 2-core machine: wrk, Redis, the API, and (for the raw read) this process.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from auth.tokens import Claims, TokenIssuer
from bench import wrk
from bench.floor import PageReader
from bench.procstat import CpuMeter, busy_cores
from bench.seed import Shape, seed, user_id
from bench.stack import Stack
from devstack.servers import LOOPBACK, ManagedProcess, free_port
from storage.feeds import feed_key
from storage.tweet_cache import TweetCache
from wiring import Stores, open_stores

FEED_QUERY = (
    "query($first: Int!) { feed(first: $first) { "
    "edges { cursor node { id text createdAt author { username displayName } } } "
    "pageInfo { hasNextPage endCursor } } }"
)
PAGE = 20
CONNECTIONS = 16
WARMUP_SECONDS = 2.0
COMPARED_PAGES = 50  # readers whose GraphQL and floor responses are compared byte for byte


@dataclass(frozen=True)
class Config:
    shape: Shape
    readers: int
    seconds: float


FULL = Config(Shape(users=20_000, top_audience=0, popular=2_000), readers=1_000, seconds=10)
SMALL = Config(Shape(users=4_000, top_audience=0, popular=500), readers=200, seconds=4)


@dataclass(frozen=True)
class ServerRun:
    """One wrk run against one server, with the CPU each side used per request."""

    name: str
    load: wrk.WrkResult
    server_ms: float  # API (or floor) CPU per request, every process of it
    redis_ms: float  # the data Redis's CPU per request
    redis_commands: float  # Redis commands per request (those run inside scripts included)
    machine: str  # how busy the whole machine was

    def line(self) -> str:
        return (
            f"{self.name}: {self.load.summary()}; CPU per request: server "
            f"{self.server_ms:.2f} ms, Redis {self.redis_ms:.2f} ms, wrk "
            f"{self.load.client_ms_per_request():.3f} ms; {self.redis_commands:.1f} Redis "
            f"commands per request (inside scripts included); {self.machine}"
        )


def machine() -> str:
    """Cores and CPU model: every figure below shares these cores."""
    model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "unknown CPU",
    )
    return (
        f"{os.cpu_count()} cores ({model}), shared by wrk, Redis, the API and this process; "
        f"{busy_cores():.2f} cores busy with other work just before the run (it would skew "
        f"throughput, not the CPU per request)"
    )


async def run(small: bool = False) -> None:
    config = SMALL if small else FULL
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack.start(Path(tmp))
        try:
            await _run(stack, config, Path(tmp))
        finally:
            stack.stop()


async def _run(stack: Stack, config: Config, tmp: Path) -> None:
    stores = open_stores(replace(stack.settings, redis_timeout_seconds=30))
    try:
        readers, tokens = await seeded_readers(stack, stores, config)
        await compare_and_measure(stack, stores, readers, tokens, config, tmp)
    finally:
        await stores.close()


async def seeded_readers(
    stack: Stack, stores: Stores, config: Config
) -> tuple[list[int], list[str]]:
    """Seed the graph and tweets, start one API process, and build every reader's feed through
    it (asserting full pages): (readers, their tokens). The same readers for every read bench."""
    await stores.graph.ensure_schema()
    seeded = await seed(config.shape, stores.graph, stores.accounts, stores.tweets)
    print(
        f"seeded {seeded['users']:,} users, {seeded['follows']:,} follows, "
        f"{seeded['tweets']:,} tweets"
    )
    rng = random.Random(11)
    readers = rng.sample(range(config.shape.popular, config.shape.users), config.readers)
    issuer = TokenIssuer(stack.settings.jwt_secret, 3600)
    tokens = [issuer.issue(user_id(r), 0) for r in readers]
    stack.start_api(workers=1)
    await warm_feeds(stack.api_url, tokens)
    await print_feed_lengths(stores, readers)
    return readers, tokens


async def warm_feeds(api_url: str, tokens: list[str]) -> None:
    """Read every reader's feed once through GraphQL (the miss path builds it) and assert the
    page: 20 tweets, each with its author."""
    authors: list[int] = []
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as client:
        limit = asyncio.Semaphore(8)

        async def read(token: str) -> None:
            async with limit:
                authors.append(len(check_page(await post_feed(client, token))))

        await asyncio.gather(*(read(t) for t in tokens))
    print(
        f"pages: {len(tokens):,} readers, every page {PAGE} tweets with authors (asserted); "
        f"distinct authors per page: median {statistics.median(authors):g}, "
        f"min {min(authors)}"
    )


async def post_feed(client: httpx.AsyncClient, token: str) -> bytes:
    response = await client.post(
        "/graphql",
        json={"query": FEED_QUERY, "variables": {"first": PAGE}},
        headers={"Authorization": f"Bearer {token}"},
    )
    response.raise_for_status()
    return response.content


def check_page(body: bytes) -> set[str]:
    """A full page with authors, no errors; its authors' usernames."""
    data = json.loads(body)
    assert "errors" not in data, data["errors"]
    edges = data["data"]["feed"]["edges"]
    assert len(edges) == PAGE, f"a page of {len(edges)} tweets, expected {PAGE}"
    names = {edge["node"]["author"]["username"] for edge in edges}
    assert all(names), "a tweet without its author"
    return names


async def print_feed_lengths(stores: Stores, readers: list[int]) -> None:
    """How many entries the readers' cached feeds hold (the page is the newest 20 of them)."""
    async with stores.feed_redis.pipeline(transaction=False) as pipe:
        for reader in readers:
            pipe.zcard(feed_key(user_id(reader)))
        sizes = [size - 1 for size in await pipe.execute()]  # minus the COMPLETE marker
    print(f"readers' feeds: {statistics.median(sizes):g} entries median, {min(sizes)} min")


async def compare_and_measure(
    stack: Stack,
    stores: Stores,
    readers: list[int],
    tokens: list[str],
    config: Config,
    tmp: Path,
) -> None:
    """The floor answers with GraphQL's bytes; then wrk against each server, 1 and 2 worker
    processes, and the raw read; the figures with their targets."""
    floor_port = free_port()
    floor_url = f"http://{LOOPBACK}:{floor_port}"
    floor = stack.start_floor(floor_port, workers=1)
    try:
        await compare_bytes(stack.api_url, floor_url, tokens[:COMPARED_PAGES])
    finally:
        floor.stop()
    if not wrk.available():
        print(f"wrk figures (server CPU, floor, 1 vs 2 workers): {wrk.WRK_MISSING}")
        await print_raw(stores, stack, readers, config)
        return
    requests = [wrk.post_request("/graphql", feed_body(), t) for t in tokens]
    script = wrk.write_script(tmp, "feed", wrk.rotating_script(requests, expect_authors=PAGE))
    runs: dict[tuple[str, int], ServerRun] = {}
    for workers in (1, 2):
        stack.start_api(workers=workers)
        runs["graphql", workers] = await measure(
            f"GraphQL, {workers} API process(es)",
            stack.api_url,
            script,
            stack.api,
            stack,
            stores,
            config.seconds,
        )
        stack.stop_api()
        floor = stack.start_floor(floor_port, workers=workers)
        try:
            runs["floor", workers] = await measure(
                f"floor, {workers} process(es)",
                floor_url,
                script,
                floor,
                stack,
                stores,
                config.seconds,
            )
        finally:
            floor.stop()
    raw = await print_raw(stores, stack, readers, config)
    print_targets(runs, raw)


def feed_body() -> str:
    return json.dumps({"query": FEED_QUERY, "variables": {"first": PAGE}})


async def compare_bytes(api_url: str, floor_url: str, tokens: list[str]) -> None:
    """The floor is only a floor if it does the same work: same pages, same bytes."""
    async with (
        httpx.AsyncClient(base_url=api_url, timeout=30) as api,
        httpx.AsyncClient(base_url=floor_url, timeout=30) as floor,
    ):
        for token in tokens:
            expected, got = await post_feed(api, token), await post_feed(floor, token)
            assert got == expected, (
                f"floor differs from GraphQL:\n{got[:300]!r}\n{expected[:300]!r}"
            )
    print(f"floor: same bytes as the GraphQL response for {len(tokens)} of {len(tokens)} readers")


async def measure(
    name: str,
    url: str,
    script: Path,
    server: ManagedProcess | None,
    stack: Stack,
    stores: Stores,
    seconds: float,
) -> ServerRun:
    """wrk for `seconds` after an unmeasured warm-up, with the server's and Redis's CPU from
    /proc and Redis's command count around the measured run."""
    assert server is not None
    await asyncio.to_thread(
        wrk.run_wrk, url + "/graphql", script, connections=CONNECTIONS, seconds=WARMUP_SECONDS
    )
    meter = CpuMeter({"server": [server.pid], "redis": [stack.data_redis.pid]})
    commands = await redis_commands(stores)
    meter.start()
    load = await asyncio.to_thread(
        wrk.run_wrk, url + "/graphql", script, connections=CONNECTIONS, seconds=seconds
    )
    meter.stop()
    commands = await redis_commands(stores) - commands
    assert load.short_pages == 0, f"{load.short_pages} pages without {PAGE} authors"
    n = max(1, load.requests)
    result = ServerRun(
        name=name,
        load=load,
        server_ms=meter.seconds["server"] / n * 1000,
        redis_ms=meter.seconds["redis"] / n * 1000,
        redis_commands=commands / n,
        machine=meter.machine(),
    )
    print(result.line())
    return result


async def redis_commands(stores: Stores) -> int:
    """Commands the data Redis has processed so far (documents, feeds: one server here)."""
    info = await stores.feed_redis.info("stats")
    return int(info["total_commands_processed"])


@dataclass(frozen=True)
class RawRun:
    rate: float
    client_ms: float  # this process's CPU per read
    redis_ms: float


async def print_raw(stores: Stores, stack: Stack, readers: list[int], config: Config) -> RawRun:
    """The floor's store calls alone, from this process, CONNECTIONS at a time: the ceiling
    the API's throughput is compared with."""
    cache = TweetCache(
        max_entries=stack.settings.tweet_cache_size,
        ttl_seconds=stack.settings.tweet_cache_ttl_seconds,
    )
    reader = PageReader(stores, cache)
    viewers = [Claims(user_id(r), 0, int(time.time()) + 3600) for r in readers]
    deadline = time.perf_counter() + WARMUP_SECONDS
    await _read_until(reader, viewers, deadline)
    meter = CpuMeter({"redis": [stack.data_redis.pid]})
    meter.start()
    cpu, started = time.process_time(), time.perf_counter()
    done = await _read_until(reader, viewers, started + config.seconds)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    meter.stop()
    raw = RawRun(done / elapsed, cpu / done * 1000, meter.seconds["redis"] / done * 1000)
    print(
        f"raw Redis page read (the floor's store calls, no HTTP; one Python process, "
        f"{CONNECTIONS} concurrent): {raw.rate:,.0f} reads/s; CPU per read: client "
        f"{raw.client_ms:.2f} ms, Redis {raw.redis_ms:.2f} ms; {meter.machine()}"
    )
    return raw


async def _read_until(reader: PageReader, viewers: list[Claims], deadline: float) -> int:
    """Read pages from CONNECTIONS tasks until `deadline`; how many were read."""
    counts = [0] * CONNECTIONS

    async def loop(k: int) -> None:
        i = k
        while time.perf_counter() < deadline:
            page = await reader.read(viewers[i % len(viewers)], PAGE)
            assert len(page.items) == PAGE
            counts[k] += 1
            i += CONNECTIONS

    await asyncio.gather(*(loop(k) for k in range(CONNECTIONS)))
    return sum(counts)


def print_targets(runs: dict[tuple[str, int], ServerRun], raw: RawRun) -> None:
    one, two = runs["graphql", 1], runs["graphql", 2]
    overhead = one.server_ms - runs["floor", 1].server_ms
    overhead_two = two.server_ms - runs["floor", 2].server_ms
    print(
        f"server CPU per full {PAGE}-tweet page (GraphQL, 1 process): {one.server_ms:.2f} ms "
        f"(target <= 1.5 ms)"
    )
    print(
        f"GraphQL overhead above the floor: {overhead:.2f} ms CPU per request with 1 process, "
        f"{overhead_two:.2f} ms with 2 (target <= 0.5 ms)"
    )
    print(
        f"throughput, GraphQL: 1 process {one.load.rate:,.0f} req/s, 2 processes "
        f"{two.load.rate:,.0f} req/s ({two.load.rate / one.load.rate:.2f}x); raw Redis page "
        f"read {raw.rate:,.0f}/s; ratio 2 processes / raw {two.load.rate / raw.rate:.2f} "
        f"(target >= 0.25)"
    )
