"""A page of 100 tweets with their authors costs a constant number of Redis commands (DataLoaders
batch the documents and the profiles), and a feed page on a cache hit two round trips: counted
on the server with MONITOR. Engagement counts and the viewer's state add a constant number too
(on a feed page: the counts ride in its MGET, the viewer's state is one script)."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import httpx
import pytest
import redis

from resolvers.ids import tweet_global_id
from settings import Settings
from storage import lua
from storage.accounts import AccountStore, Profile
from storage.redis_clients import open_redis
from storage.tweets import Tweet, TweetStore
from tests.gql import FEED, FEED_ENTRIES, FOLLOW, RETWEET, gql, sign_up, tweet
from tests.test_likes import LIKE

START, END = "round-trips-start", "round-trips-end"


class CommandLog:
    """Commands clients send between ECHO START and ECHO END, from MONITOR (the commands a
    script runs are not round trips: they are left out)."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url)
        self.commands: list[str] = []
        self.lines: list[str] = []  # whole commands, arguments included
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _watch(self) -> None:
        with self._client.monitor() as monitor:
            self._ready.set()
            recording = False
            for entry in monitor.listen():
                command = entry["command"]
                if command == f"ECHO {START}":
                    recording = True
                elif command == f"ECHO {END}":
                    return
                elif recording and entry.get("client_type") != "lua":  # not inside a script
                    self.commands.append(command.split()[0].upper())
                    self.lines.append(command)

    def mark(self, marker: str) -> None:
        self._client.execute_command("ECHO", marker)

    def close(self) -> list[str]:
        self._thread.join(10)
        self._client.close()
        return self.commands


async def seed(settings: Settings, authors: int) -> list[tuple[int, int]]:
    client = open_redis(settings.documents_redis_url, timeout_seconds=5)
    accounts = AccountStore(client)
    tweets = TweetStore(client, idempotency_ttl_seconds=60)
    refs = []
    try:
        for author in range(1, authors + 1):
            await accounts.save_profile(Profile(author, f"user{author}", "U", "h", 1))
            tweet_id = 10_000 + author
            await tweets.create(Tweet(tweet_id, author, f"by {author}", 1), None, [])
            refs.append((author, tweet_id))
    finally:
        await client.aclose()
    return refs


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Room for the 100 aliased fields this test asks in one operation."""
    return replace(settings, max_aliases=100, max_query_tokens=5_000)


async def test_hundred_tweets_by_hundred_authors_cost_constant_commands(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    refs = await seed(settings, 100)
    fields = " ".join(
        f't{i}: tweet(id: "{tweet_global_id(a, t)}") {{ text author {{ username }} }}'
        for i, (a, t) in enumerate(refs)
    )
    log = await asyncio.to_thread(CommandLog, settings.documents_redis_url)
    log.mark(START)
    response = await client.post("/graphql", json={"query": f"{{ {fields} }}"})
    log.mark(END)
    commands = await asyncio.to_thread(log.close)
    data = response.json()["data"]
    assert data["t99"] == {"text": "by 100", "author": {"username": "user100"}}
    assert len(data) == 100
    app_commands = [c for c in commands if c not in {"EVALSHA", "EVAL"}]  # id-lease renewals
    assert app_commands == ["MGET", "MGET"], commands  # tweets, then their authors


async def test_a_feed_page_on_a_cache_hit_costs_two_round_trips(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    viewer, _ = await sign_up(client, "reader")
    for n in range(5):
        token, author_id = await sign_up(client, f"author{n}")
        for k in range(5):
            await tweet(client, token, f"{n}.{k}")
        await gql(client, FOLLOW, {"id": author_id}, token=viewer)
    again, commands = await read_twice(client, settings, FEED, viewer)
    assert len(again["feed"]["edges"]) == 20
    authors = {e["node"]["author"]["username"] for e in again["feed"]["edges"]}
    assert authors == {f"author{n}" for n in range(1, 5)}  # the 20 newest of 25
    # The feed script (page, follow flags, state), then one MGET: documents, authors, token.
    assert commands == ["EVALSHA", "MGET"], commands


async def read_twice(
    client: httpx.AsyncClient, settings: Settings, query: str, viewer: str
) -> tuple[dict, list[str]]:
    """Read a feed page (building the feed), then again: the second answer (the same as the
    first) and the commands it sent to the documents Redis."""
    first = await gql(client, query, {"first": 20}, token=viewer)
    log = await asyncio.to_thread(CommandLog, settings.documents_redis_url)
    log.mark(START)
    again = await gql(client, query, {"first": 20}, token=viewer)
    log.mark(END)
    await asyncio.to_thread(log.close)
    assert again == first
    return again, app_commands(log)


async def test_a_feed_page_with_retweets_costs_one_more_round_trip(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    viewer, _ = await sign_up(client, "reader")
    originals = []
    for n in range(5):
        token, _ = await sign_up(client, f"stranger{n}")  # not followed: seen through retweets
        originals.append((await tweet(client, token, f"original {n}"))["id"])
    for n in range(4):
        token, author_id = await sign_up(client, f"author{n}")
        await tweet(client, token, f"own {n}")
        await gql(client, RETWEET, {"id": originals[n]}, token=token)
        await gql(client, FOLLOW, {"id": author_id}, token=viewer)
    again, commands = await read_twice(client, settings, FEED_ENTRIES, viewer)
    assert len(again["feed"]["edges"]) == 8
    retweeted = [e["node"]["text"] for e in again["feed"]["edges"] if e["retweetedBy"]]
    assert sorted(retweeted) == [f"original {n}" for n in range(4)]
    # The feed script, the MGET of the page (retweets, authors, token), then one MGET of the
    # originals with their authors, whatever the number of retweets.
    assert commands == ["EVALSHA", "MGET", "MGET"], commands


ENGAGEMENT_FIELDS = "replyCount retweetCount quoteCount likeCount viewerHasLiked viewerHasRetweeted"


CONNECTING = {"PING", "HELLO", "CLIENT"}  # a new pooled connection's set-up, not the request's


def app_commands(log: CommandLog) -> list[str]:
    """The commands of the request (not the id lease's renewals nor connection set-up)."""
    commands = [line.split()[0].upper() for line in log.lines if "idgen:worker:" not in line]
    return [command for command in commands if command not in CONNECTING]


async def test_hundred_tweets_with_counts_and_viewer_state_cost_constant_commands(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    refs = await seed(settings, 100)
    token, _ = await sign_up(client, "viewer")
    await gql(client, LIKE, {"id": tweet_global_id(*refs[7])}, token=token)
    fields = " ".join(
        f't{i}: tweet(id: "{tweet_global_id(a, t)}") {{ text {ENGAGEMENT_FIELDS} }}'
        for i, (a, t) in enumerate(refs)
    )
    for viewer in (None, token):
        log = await asyncio.to_thread(CommandLog, settings.documents_redis_url)
        log.mark(START)
        data = await gql(client, f"{{ {fields} }}", token=viewer)
        log.mark(END)
        await asyncio.to_thread(log.close)
        assert len(data) == 100 and data["t7"]["likeCount"] == 1
        assert data["t7"]["viewerHasLiked"] is (viewer is not None)
        assert not any(data[f"t{i}"]["viewerHasLiked"] for i in range(100) if i != 7)
        # Tweets (the second time from the process cache), their authors, their counts; with a
        # viewer also the token check (GET and EXISTS, pipelined) and its state for all 100
        # tweets (ZMSCORE and HMGET, pipelined on the viewer's node).
        state = ["GET", "EXISTS", "ZMSCORE", "HMGET"]
        expected = ["MGET"] * 3 if viewer is None else ["MGET"] * 2 + state
        assert sorted(app_commands(log)) == sorted(expected), [ln[:60] for ln in log.lines]


async def test_a_feed_page_with_counts_and_viewer_state_costs_one_more_round_trip(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    viewer, _ = await sign_up(client, "reader")
    token, author_id = await sign_up(client, "author")
    posted = [await tweet(client, token, f"t{k}") for k in range(20)]
    await gql(client, FOLLOW, {"id": author_id}, token=viewer)
    for n in (3, 11):
        await gql(client, LIKE, {"id": posted[n]["id"]}, token=viewer)
    query = (
        "query($first: Int!) { feed(first: $first) { edges { node { id text author { username } "
        + ENGAGEMENT_FIELDS
        + " } } } }"
    )
    await gql(client, query, {"first": 20}, token=viewer)  # builds the feed
    log = await asyncio.to_thread(CommandLog, settings.documents_redis_url)
    log.mark(START)
    page = await gql(client, query, {"first": 20}, token=viewer)
    log.mark(END)
    await asyncio.to_thread(log.close)
    nodes = [edge["node"] for edge in page["feed"]["edges"]]
    assert len(nodes) == 20
    liked = {node["text"] for node in nodes if node["viewerHasLiked"]}
    assert liked == {"t3", "t11"}
    assert {node["text"]: node["likeCount"] for node in nodes}["t3"] == 1
    # The feed script; then one script reading the documents, counts, authors and token, and
    # the viewer's state (its likes and retweets): two round trips in all.
    assert app_commands(log) == ["EVALSHA", "EVALSHA"], [ln[:60] for ln in log.lines]
    scripts = [line.split()[1] for line in log.lines if line.upper().startswith("EVALSHA")]
    assert scripts[-1] == lua.sha("page_read")


async def test_a_timeline_page_with_counts_and_viewer_state_costs_constant_commands(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    token, _ = await sign_up(client, "author")
    for k in range(30):
        await tweet(client, token, f"t{k}")
    query = (
        'query { user(username: "author") { tweets(first: 30) { edges { node { text '
        + ENGAGEMENT_FIELDS
        + " } } } } }"
    )
    for viewer in (token, None):
        await gql(client, query, token=viewer)  # warm: the scripts loaded, the tweets cached
        log = await asyncio.to_thread(CommandLog, settings.documents_redis_url)
        log.mark(START)
        data = await gql(client, query, token=viewer)
        log.mark(END)
        await asyncio.to_thread(log.close)
        assert len(data["user"]["tweets"]["edges"]) == 30
        commands = app_commands(log)
        # The username and profile, the timeline (the documents come from the process cache),
        # which of the page's tweets the author retweeted (shown once, at the retweet), the
        # counts; with a viewer its token check and its state.
        expected = ["GET", "MGET", "ZRANGE", "HMGET", "MGET"]
        if viewer is not None:
            expected += ["GET", "EXISTS", "ZMSCORE", "HMGET"]
        assert sorted(commands) == sorted(expected), [ln[:60] for ln in log.lines]
