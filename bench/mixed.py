"""DeathStarBench-style mixed load on the real socfb-Reed98 graph (962 people, 37,624 follows):
60% home-feed reads, 30% user-timeline reads, 10% createTweet, from 32 wrk connections, each
request chosen at random by the Lua script. The figures: p99 (target < 100 ms) and errors
(target 0: any non-200, socket error, timeout, or a GraphQL `errors` key).

wrk (unlike DeathStarBench's wrk2) is closed-loop: each connection sends its next request when
the last one is answered, so at saturation the latency is just connections / throughput
(Little's law). The run is therefore made twice: saturated, and paced at half the saturated
rate with exponential think times per connection (wrk's `delay()`), the way a fixed-rate wrk2
run offers load. The Dramatiq worker runs, so every tweet is fanned out meanwhile."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from auth.tokens import TokenIssuer
from bench import wrk
from bench.data import reed98_follows
from bench.procstat import CpuMeter
from bench.read_path import FEED_QUERY, check_page, machine, post_feed
from bench.stack import Stack
from storage.accounts import Profile
from storage.tweets import Tweet
from wiring import Stores, open_stores

CONNECTIONS = 32
TWEETS_PER_USER = 20
TWEET_ID_BASE = 10**17  # seeded tweets: older than any snowflake id the API issues
CHUNK = 5_000
TIMELINE_QUERY = (
    "query($u: String!) { user(username: $u) { username displayName tweets(first: 20) { "
    "edges { cursor node { id text createdAt author { username displayName } } } "
    "pageInfo { hasNextPage endCursor } } } }"
)
CREATE_TWEET = "mutation($t: String!) { createTweet(text: $t) { id text createdAt } }"


@dataclass(frozen=True)
class People:
    ids: list[int]
    usernames: list[str]
    tokens: list[str]


def username(user_id: int) -> str:
    return f"reed{user_id % 10**6}"


async def seed_reed98(stores: Stores, issuer: TokenIssuer) -> People:
    """Reed98's people (accounts with claimed usernames, graph nodes), its friendships as two
    follows each, and TWEETS_PER_USER tweets per person, through the bulk loaders."""
    users, edges = reed98_follows()
    names = [username(u) for u in users]
    now_ms = int(time.time() * 1000)
    await stores.graph.ensure_schema()
    await stores.graph.bulk_create_users(list(zip(users, names, strict=True)))
    await stores.graph.bulk_follow([(a, b, now_ms) for a, b in edges])
    await stores.accounts.save_profiles(
        [Profile(u, n, n.title(), "-", now_ms) for u, n in zip(users, names, strict=True)]
    )
    for user, name in zip(users, names, strict=True):
        await stores.accounts.claim_username(name, user)
    tweets = [
        Tweet(TWEET_ID_BASE + n * len(users) + i, user, f"tweet {n} of {user}", now_ms)
        for n in range(TWEETS_PER_USER)
        for i, user in enumerate(users)
    ]
    for start in range(0, len(tweets), CHUNK):
        await stores.tweets.create_many(tweets[start : start + CHUNK])
    print(
        f"seeded socfb-Reed98: {len(users)} people, {len(edges):,} follows, {len(tweets):,} tweets"
    )
    return People(users, names, [issuer.issue(u, 0) for u in users])


async def warm_feeds(api_url: str, people: People) -> None:
    """Everyone's feed read once (built on the miss path), each a full page with authors."""
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as client:
        limit = asyncio.Semaphore(8)

        async def read(token: str) -> None:
            async with limit:
                check_page(await post_feed(client, token))

        await asyncio.gather(*(read(t) for t in people.tokens))
    print(f"feeds built: {len(people.tokens)} people, every first page 20 tweets with authors")


def mixed_script(people: People, think_ms: float) -> str:
    """The Lua script: per request, 60% feed (a random person's token), 30% timeline (a random
    person's, read by another), 10% createTweet (text unique per thread and request). With
    `think_ms` > 0 each connection waits an exponential think time of that mean first."""
    n = len(people.tokens)
    feeds = [
        wrk.post_request("/graphql", _body(FEED_QUERY, {"first": 20}), t) for t in people.tokens
    ]
    timelines = [
        wrk.post_request(
            "/graphql", _body(TIMELINE_QUERY, {"u": name}), people.tokens[(i * 7 + 3) % n]
        )
        for i, name in enumerate(people.usernames)
    ]
    head, tail = _body(CREATE_TWEET, {"t": "\0"}).split("\\u0000")
    delay = (
        f"function delay() return -math.log(1 - math.random()) * {think_ms:.3f} end\n"
        if think_ms > 0
        else ""
    )
    feed_table, timeline_table = ",\n".join(feeds), ",\n".join(timelines)
    return wrk.script(
        0,
        "local feeds, timelines, tokens, sent = {}, {}, {}, 0\n"
        "function init(args)\n"
        f"  feeds = {{\n{feed_table}\n}}\n"
        f"  timelines = {{\n{timeline_table}\n}}\n"
        f"  tokens = {wrk.lua_table(people.tokens)}\n"
        "  math.randomseed(thread_id * 7919)\n"
        "end\n"
        "function request()\n"
        "  local r = math.random(100)\n"
        "  if r <= 60 then return feeds[math.random(#feeds)] end\n"
        "  if r <= 90 then return timelines[math.random(#timelines)] end\n"
        "  sent = sent + 1\n"
        "  local headers = {['Content-Type'] = 'application/json',\n"
        "                   ['Authorization'] = 'Bearer ' .. tokens[math.random(#tokens)]}\n"
        f"  local body = {wrk.lua_quote(head)} .. 'mixed ' .. thread_id .. '-' .. sent .. "
        f"{wrk.lua_quote(tail)}\n"
        "  return wrk.format('POST', '/graphql', headers, body)\n"
        "end\n" + delay,
    )


def _body(query: str, variables: dict[str, object]) -> str:
    return json.dumps({"query": query, "variables": variables})


async def run(small: bool = False) -> None:
    if not wrk.available():
        print(f"mixed load: {wrk.WRK_MISSING}")
        return
    seconds = 4.0 if small else 10.0
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack.start(Path(tmp))
        stores = open_stores(replace(stack.settings, redis_timeout_seconds=30))
        try:
            people = await seed_reed98(stores, TokenIssuer(stack.settings.jwt_secret, 3600))
            stack.start_worker(threads=4)
            stack.start_api(workers=1)
            await warm_feeds(stack.api_url, people)
            await measure_mixed(stack, people, seconds, Path(tmp))
        finally:
            await stores.close()
            stack.stop()


async def measure_mixed(stack: Stack, people: People, seconds: float, tmp: Path) -> None:
    """Saturated with 1 and 2 API processes, then paced at half the 2-process rate."""
    saturated = wrk.write_script(tmp, "mixed", mixed_script(people, 0))
    rate = 0.0
    for workers in (1, 2):
        stack.start_api(workers=workers)
        await asyncio.to_thread(_wrk, stack, saturated, 2.0)  # warm-up, unmeasured
        rate = await run_measured(
            stack, saturated, seconds, f"saturated, {workers} API process(es)"
        )
    think_ms = CONNECTIONS / (rate / 2) * 1000
    paced = wrk.write_script(tmp, "mixed_paced", mixed_script(people, think_ms))
    await run_measured(
        stack,
        paced,
        seconds,
        f"paced at about half that rate (exponential "
        f"think time, mean {think_ms:.0f} ms per connection), 2 API processes",
    )


def _wrk(stack: Stack, script: Path, seconds: float) -> wrk.WrkResult:
    return wrk.run_wrk(f"{stack.api_url}/graphql", script, connections=CONNECTIONS, seconds=seconds)


async def run_measured(stack: Stack, script: Path, seconds: float, name: str) -> float:
    """One measured run, printed with its targets and where the cores went (CPU per request of
    the API, the fan-out worker, Redis and FalkorDB); returns its req/s."""
    assert stack.api is not None and stack.worker is not None
    meter = CpuMeter(
        {
            "API": [stack.api.pid],
            "fan-out worker": [stack.worker.pid],
            "Redis": [stack.data_redis.pid],
            "FalkorDB": [stack.graph_server.pid],
        }
    )
    meter.start()
    load = await asyncio.to_thread(_wrk, stack, script, seconds)
    meter.stop()
    n = max(1, load.requests)
    cpu = ", ".join(f"{part} {used / n * 1000:.2f} ms" for part, used in meter.seconds.items())
    print(
        f"mixed, {name}: {load.rate:,.0f} req/s, p50 {load.p50_ms:.1f} ms, p99 "
        f"{load.p99_ms:.1f} ms (target < 100 ms), {load.errors} errors (target 0: "
        f"{load.non200} non-200, {load.graphql_errors} GraphQL errors, {load.socket_errors} "
        f"socket errors, {load.timeouts} timeouts) in {load.requests:,} requests; CPU per "
        f"request: {cpu}, wrk {load.client_ms_per_request():.3f} ms; {meter.machine()}"
    )
    return load.rate
