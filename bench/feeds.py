"""Home-feed benchmarks on a seeded power-law graph: fan-out, createTweet, misses, memory. Every
figure and every ratio's two sides are measured in this one run. (Feed reads on a cache hit are
bench/read_path.py: this graph's readers are made active with empty feeds, so their pages would
hold the one fanned-out tweet, not 20.)"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx
from dramatiq.brokers.redis import RedisBroker

from auth.tokens import TokenIssuer
from bench.seed import Shape, seed, user_id
from bench.stack import Stack
from bench.stats import percentile, summary_ms
from graph.factory import open_graph
from resolvers.ids import parse_tweet_global_id
from social.fanout_plan import batches, live_event
from storage.accounts import AccountStore, Profile
from storage.fanout_stats import FanoutStats
from storage.feeds import FeedCache, FeedRef, feed_key, open_feed_cache
from storage.redis_clients import open_redis
from storage.tweets import TweetStore

FEED_QUERY = """
query($first: Int!) {
  feed(first: $first) {
    edges { cursor node { id text createdAt author { username displayName } } }
  }
}
"""
CREATE_TWEET = "mutation($text: String!) { createTweet(text: $text) { id } }"
MISS_USERS = 10
MISS_FOLLOWS = 1_000
TWEET_SAMPLES = 20


async def run(shape: Shape | None = None) -> None:
    shape = shape or Shape()
    with tempfile.TemporaryDirectory() as tmp:
        # CELEBRITY_FOLLOWERS above the top author, so its 100k followers are fanned out.
        stack = Stack.start(Path(tmp), celebrity_followers=10 * shape.top_audience)
        try:
            await _run(stack, shape)
        finally:
            stack.stop()


async def _run(stack: Stack, shape: Shape) -> None:
    settings = stack.settings
    graph = open_graph(settings)
    documents = open_redis(settings.documents_redis_url, timeout_seconds=30)
    feeds = open_feed_cache(replace(settings, redis_timeout_seconds=30))
    accounts = AccountStore(documents)
    tweets = TweetStore(documents, idempotency_ttl_seconds=60)
    tokens = TokenIssuer(settings.jwt_secret, 3600)
    await graph.ensure_schema()
    seeded = await seed(shape, graph, accounts, tweets)
    print(
        f"seeded {seeded['users']:,} users, {seeded['follows']:,} follows in "
        f"{seeded['graph_seconds']:.1f} s; {seeded['tweets']:,} tweets in "
        f"{seeded['tweet_seconds']:.1f} s"
    )
    top = user_id(0)
    print(f"top author followers: {(await graph.counts([top]))[top].followers:,}")
    audience = [user_id(i) for i in range(1, shape.top_audience + 1)]
    await feeds.create_empty(audience)  # every follower of the top author is active

    raw_rate = await raw_insert_rate(feeds, audience)
    stack.start_api()
    stack.start_worker()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=120) as client:
        await fan_out_figures(client, tokens, FanoutStats(feeds.client), top, len(audience),
                              raw_rate)  # fmt: skip
        stack.stop_worker()
        await create_tweet_figures(client, tokens, graph, shape, settings)
        await miss_figures(client, tokens, graph, accounts, feeds, shape)
    await graph.close()
    await documents.aclose()
    await feeds.client.aclose()


async def raw_insert_rate(feeds: FeedCache, audience: list[int]) -> float:
    """Feed inserts/s of the push script called directly, batch by batch, on the same Redis."""
    ref = FeedRef(tweet_id=2**62, author_id=user_id(0))
    event = live_event("tweet", ref.author_id, ref.tweet_id)
    started = time.perf_counter()
    for batch in batches(audience, 1_000):
        await feeds.push_to_feeds(ref, batch, event)
    seconds = time.perf_counter() - started
    for batch in batches(audience, 1_000):
        await feeds.unpush_from_feeds(ref, batch, event)
    rate = len(audience) / seconds
    print(f"raw scripted feed inserts: {rate:,.0f}/s ({len(audience):,} in {seconds:.2f} s)")
    return rate


async def fan_out_figures(
    client: httpx.AsyncClient,
    tokens: TokenIssuer,
    stats: FanoutStats,
    author: int,
    audience: int,
    raw_rate: float,
) -> None:
    """One tweet of the top author through Dramatiq; lag from the timestamps workers record."""
    token = tokens.issue(author, 0)
    body = (await _post(client, CREATE_TWEET, {"text": "to all 100k"}, token))["createTweet"]
    returned_ms = time.time() * 1000
    _, tweet_id = parse_tweet_global_id(body["id"])
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        records = await stats.batches_of(tweet_id)
        if sum(r.followers for r in records) >= audience:
            break
        await asyncio.sleep(0.25)
    lags = [r.finished_ms - returned_ms for r in records for _ in range(r.followers)]
    inserts = sum(r.inserted for r in records)
    finishes = sorted(r.finished_ms for r in records)
    span = finishes[-1] - returned_ms
    # Delivery alone: from the first batch done to the last, for the batches after the first.
    delivery_rate = (inserts - records[0].inserted) / max(1, finishes[-1] - finishes[0]) * 1000
    print(f"fan-out of one tweet to {audience:,} followers: {inserts:,} inserts in "
          f"{span / 1000:.2f} s end to end (graph read included) = {inserts / span * 1000:,.0f}"
          f" inserts/s; delivery {delivery_rate:,.0f} inserts/s; ratio of delivery to raw: "
          f"{delivery_rate / raw_rate:.2f} (target >= 0.5)")  # fmt: skip
    print(f"fan-out lag (createTweet returned -> in the feed) over {len(lags):,} followers: "
          f"p50 {percentile(lags, 0.5) / 1000:.2f} s, p99 {percentile(lags, 0.99) / 1000:.2f} s "
          f"(target p99 < 5 s); {len(records)} batches")  # fmt: skip


async def create_tweet_figures(
    client: httpx.AsyncClient, tokens: TokenIssuer, graph, shape: Shape, settings
) -> None:
    """createTweet latency, top author vs a ~10-follower author, interleaved. The worker is
    stopped: this measures the API's own cost (enqueue + store), not CPU shared with fan-out."""
    sample = [user_id(i) for i in range(shape.popular // 2, shape.popular)]
    counts = await graph.counts(sample)
    small = min(sample, key=lambda u: abs(counts[u].followers - 10))
    top_token, small_token = tokens.issue(user_id(0), 0), tokens.issue(small, 0)
    top_times: list[float] = []
    small_times: list[float] = []
    for i in range(TWEET_SAMPLES):
        for token, times in ((top_token, top_times), (small_token, small_times)):
            started = time.perf_counter()
            await _post(client, CREATE_TWEET, {"text": f"latency {i}"}, token)
            times.append(time.perf_counter() - started)
    RedisBroker(url=settings.broker_redis_url).flush("fanout")  # nobody will run these
    ratio = statistics.median(top_times) / statistics.median(small_times)
    print(f"createTweet, top author ({counts.get(user_id(0)) or '100k'} followers): "
          f"{summary_ms(top_times)}")  # fmt: skip
    print(f"createTweet, {counts[small].followers}-follower author: {summary_ms(small_times)}; "
          f"p50 ratio {ratio:.2f} (target <= 2)")  # fmt: skip


async def miss_figures(client, tokens, graph, accounts, feeds: FeedCache, shape: Shape) -> None:
    """Users following 1,000 accounts: first read (miss: rebuild) vs second read (hit)."""
    rng = random.Random(5)
    users = [user_id(shape.users + i) for i in range(MISS_USERS)]
    await graph.bulk_create_users([(u, f"m{u}") for u in users])
    await accounts.save_profiles([Profile(u, f"m{u}", "M", "-", 1) for u in users])
    for u in users:
        followees = rng.sample(range(1, shape.popular), MISS_FOLLOWS)
        await graph.bulk_follow([(u, user_id(f), 1) for f in followees])
    misses: list[float] = []
    hits: list[float] = []
    for u in users:
        token = tokens.issue(u, 0)
        for times in (misses, hits):
            started = time.perf_counter()
            await _post(client, FEED_QUERY, {"first": 20}, token)
            times.append(time.perf_counter() - started)
    ratio = statistics.median(misses) / statistics.median(hits)
    print(f"feed read following {MISS_FOLLOWS:,} accounts: miss {summary_ms(misses)}; "
          f"hit {summary_ms(hits)}; p50 ratio {ratio:.1f} (target <= 10)")  # fmt: skip
    total_bytes = total_entries = 0
    for u in users:
        usage = await feeds.client.memory_usage(feed_key(u), samples=0)
        assert usage is not None, f"feed {u} vanished"  # None: no such key
        total_bytes += usage
        total_entries += await feeds.client.zcard(feed_key(u)) - 1  # minus the COMPLETE marker
    encoding = (await feeds.client.object("ENCODING", feed_key(users[0]))).decode()
    print(f"feed cache memory: {total_bytes / total_entries:.1f} bytes/entry over "
          f"{total_entries:,} entries in {len(users)} full feeds ({encoding}; "
          f"target <= 40)")  # fmt: skip


async def _post(client: httpx.AsyncClient, query: str, variables: dict, token: str) -> dict:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    if "errors" in body:
        raise RuntimeError(body["errors"])
    return body["data"]
