"""The like storm and the cost of engagement on a feed page (issue 12).

Figures, each printed with its target:
  - the tweet counter alone: BITFIELD INCRBY on one key, pipelined from this process, and the
    Redis CPU per increment (its ceiling on one core: 1 / that);
  - a like at the storage level (the edge on the liker's shard, then the counter), many
    distinct users at once on one tweet: likes/s and p99;
  - the like storm through the API: `like` on one tweet by many distinct signed-in users (wrk,
    one request per user), likes/s, p99, server and Redis CPU per like, and the final count
    checked against the edges;
  - a full 20-tweet feed page with all counts and the viewer's state vs the same page without
    them: server CPU per page (target: at most 25 % more).
Everything shares one 2-core machine: wrk, Redis, the API and this process.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from auth.tokens import TokenIssuer
from bench import wrk
from bench.procstat import CpuMeter
from bench.read_path import (
    FEED_QUERY,
    PAGE,
    SMALL,
    Config,
    ServerRun,
    machine,
    measure,
    seeded_readers,
)
from bench.read_path import FULL as READS_FULL
from bench.seed import TWEET_ID_BASE, user_id
from bench.stack import Stack
from bench.stats import percentile
from resolvers.ids import tweet_global_id
from storage.feeds import FeedRef
from storage.likes import LikeStore
from storage.tweet_counts import Count, TweetCounters, counts_key, likes_key
from wiring import Stores, open_stores

LIKE = "mutation($id: ID!) { like(tweetId: $id) { likeCount } }"
ENGAGEMENT = "replyCount retweetCount quoteCount likeCount viewerHasLiked viewerHasRetweeted"
FEED_WITH_ENGAGEMENT = FEED_QUERY.replace("createdAt", f"createdAt {ENGAGEMENT}")
CONNECTIONS = 16
COUNTER_SECONDS = 3.0
PIPELINE = 500  # increments per pipelined round trip (the counter's own ceiling)
STORAGE_TASKS = 64  # concurrent likers at the storage level
MAX_LIKERS = 8000  # distinct users liking through the API (one wrk script holds their tokens)


@dataclass(frozen=True)
class LikesConfig:
    reads: Config
    storm_seconds: float


FULL = LikesConfig(READS_FULL, storm_seconds=8)
SMALL_LIKES = LikesConfig(SMALL, storm_seconds=4)


async def run(small: bool = False) -> None:
    config = SMALL_LIKES if small else FULL
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack.start(Path(tmp))
        try:
            stores = open_stores(replace(stack.settings, redis_timeout_seconds=30))
            try:
                await _run(stack, stores, config, Path(tmp))
            finally:
                await stores.close()
        finally:
            stack.stop()


async def _run(stack: Stack, stores: Stores, config: LikesConfig, tmp: Path) -> None:
    _, tokens = await seeded_readers(stack, stores, config.reads)
    await counter_alone(stack, stores)
    await storage_likes(stores, config.reads.shape.users)
    if not wrk.available():
        print(f"API like storm and feed-page cost: {wrk.WRK_MISSING}")
        return
    await api_storm(stack, stores, config, tmp)
    await feed_page_cost(stack, stores, tokens, config.reads.seconds, tmp)


async def counter_alone(stack: Stack, stores: Stores) -> None:
    """BITFIELD INCRBY on one counts key, pipelined, from 4 tasks of this process."""
    key = counts_key(user_id(0), TWEET_ID_BASE)  # a real tweet's key: u0's first tweet
    done = [0]

    async def loop(deadline: float) -> None:
        while time.perf_counter() < deadline:
            async with stores.documents.pipeline(transaction=False) as pipe:
                for _ in range(PIPELINE):
                    pipe.execute_command(
                        "BITFIELD", key, "OVERFLOW", "SAT", "INCRBY", "u32", "#3", 1
                    )
                await pipe.execute()
            done[0] += PIPELINE

    meter = CpuMeter({"redis": [stack.data_redis.pid]})
    meter.start()
    started = time.perf_counter()
    await asyncio.gather(*(loop(started + COUNTER_SECONDS) for _ in range(4)))
    elapsed = time.perf_counter() - started
    meter.stop()
    per_op_us = meter.seconds["redis"] / done[0] * 1e6
    print(
        f"counter alone (one key, BITFIELD INCRBY, pipelined {PIPELINE} per round trip): "
        f"{done[0] / elapsed:,.0f}/s from one Python process (the client is the limit); "
        f"Redis CPU {per_op_us:.2f} us per increment: one Redis core's ceiling "
        f"~{1e6 / per_op_us:,.0f} increments/s on one key; {meter.machine()}"
    )
    await stores.documents.delete(key)


async def storage_likes(stores: Stores, users: int) -> None:
    """LikeStore.like then TweetCounters.bump (what a like writes), STORAGE_TASKS distinct
    users at a time on one tweet, for COUNTER_SECONDS."""
    likes = LikeStore(stores.documents)
    counters = TweetCounters(stores.documents)
    tweet = FeedRef(TWEET_ID_BASE + 1, user_id(1))
    latencies: list[float] = []
    next_user = [0]

    async def loop(deadline: float) -> None:
        while time.perf_counter() < deadline and next_user[0] < users:
            liker = user_id(next_user[0])
            next_user[0] += 1
            started = time.perf_counter()
            if await likes.like(liker, tweet, int(time.time() * 1000)):
                await counters.bump(tweet.author_id, tweet.tweet_id, Count.LIKES, 1)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(loop(started + COUNTER_SECONDS) for _ in range(STORAGE_TASKS)))
    elapsed = time.perf_counter() - started
    await counters.aclose()
    [counts] = await counters.read([(tweet.author_id, tweet.tweet_id)])
    print(
        f"storage-level likes (edge + counter, {STORAGE_TASKS} distinct users at a time, one "
        f"tweet): {len(latencies) / elapsed:,.0f} likes/s, p50 "
        f"{percentile(latencies, 0.5) * 1000:.2f} ms, p99 {percentile(latencies, 0.99) * 1000:.2f}"
        f" ms; count {counts.likes:,} for {len(latencies):,} likes "
        f"({'exact' if counts.likes == len(latencies) else 'WRONG'})"
    )


async def api_storm(stack: Stack, stores: Stores, config: LikesConfig, tmp: Path) -> None:
    """`like` on one tweet through the API by distinct users, wrk, one request per user."""
    likers = min(MAX_LIKERS, config.reads.shape.users)
    issuer = TokenIssuer(stack.settings.jwt_secret, 3600)
    author, hot, warm = user_id(2), TWEET_ID_BASE + 2, TWEET_ID_BASE + config.reads.shape.popular
    scripts = {}
    for name, tweet_id, tweet_author in (("warm", warm, author), ("storm", hot, author)):
        body = json.dumps(
            {"query": LIKE, "variables": {"id": tweet_global_id(tweet_author, tweet_id)}}
        )
        requests = [
            wrk.post_request("/graphql", body, issuer.issue(user_id(i), 0)) for i in range(likers)
        ]
        scripts[name] = wrk.write_script(tmp, f"like-{name}", wrk.rotating_script(requests, 0))
    url = stack.api_url + "/graphql"
    await asyncio.to_thread(wrk.run_wrk, url, scripts["warm"], connections=CONNECTIONS, seconds=2)
    meter = CpuMeter({"server": [stack.api.pid], "redis": [stack.data_redis.pid]})  # type: ignore[union-attr]
    meter.start()
    load = await asyncio.to_thread(
        wrk.run_wrk, url, scripts["storm"], connections=CONNECTIONS, seconds=config.storm_seconds
    )
    meter.stop()
    await asyncio.sleep(1.0)  # requests wrk cut off are still finishing in the server
    [counts] = await TweetCounters(stores.documents).read([(author, hot)])
    member = FeedRef(hot, author).member()
    async with stores.documents.pipeline(transaction=False) as pipe:
        for i in range(likers):
            pipe.zscore(likes_key(user_id(i)), member)
        edges = sum(score is not None for score in await pipe.execute())
    n = max(1, load.requests)
    repeats = max(0, load.requests - likers)
    print(
        f"API like storm (one tweet, {likers:,} distinct users, wrk {CONNECTIONS} connections, "
        f"1 API process): {load.summary()}"
        f"{f' ({repeats:,} were repeats of a user: idempotent)' if repeats else ''}; CPU per "
        f"like: server {meter.seconds['server'] / n * 1000:.2f} ms, Redis "
        f"{meter.seconds['redis'] / n * 1000:.3f} ms; final likeCount {counts.likes:,}, edges "
        f"{edges:,} ({'exact' if counts.likes == edges else 'WRONG'}); {meter.machine()}"
    )


async def feed_page_cost(
    stack: Stack, stores: Stores, tokens: list[str], seconds: float, tmp: Path
) -> None:
    """Server CPU per full feed page with and without every count and the viewer's state, in two
    alternating rounds (without, with, without, with) so that neither variant always runs on
    the warmer or the longer-lived process; each variant's lower figure is compared."""
    runs: dict[str, ServerRun] = {}
    for round_ in (1, 2):
        for name, query in (("without", FEED_QUERY), ("with", FEED_WITH_ENGAGEMENT)):
            body = json.dumps({"query": query, "variables": {"first": PAGE}})
            requests = [wrk.post_request("/graphql", body, t) for t in tokens]
            script = wrk.write_script(tmp, f"feed-{name}", wrk.rotating_script(requests, PAGE))
            run = await measure(
                f"feed page {name} counts and viewer state (round {round_})",
                stack.api_url,
                script,
                stack.api,
                stack,
                stores,
                seconds,
            )
            if name not in runs or run.server_ms < runs[name].server_ms:
                runs[name] = run
    added = runs["with"].server_ms / runs["without"].server_ms - 1
    print(
        f"counts + viewer state on a full {PAGE}-tweet page: server CPU "
        f"{runs['without'].server_ms:.2f} -> {runs['with'].server_ms:.2f} ms per page "
        f"(+{added:.0%}; target <= +25 %), Redis "
        f"commands per page {runs['without'].redis_commands:.1f} -> "
        f"{runs['with'].redis_commands:.1f}"
    )
