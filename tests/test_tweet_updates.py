"""tweetUpdates: count changes of the tweets a client shows, over a real WebSocket, coalesced
(at most one update per tweet per second) and ending on the latest counts; and the coalescing
decision on its own, with a fake clock."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from resolvers.ids import parse_tweet_global_id, tweet_global_id
from settings import Settings
from storage.redis_clients import open_redis
from storage.tweet_counts import Count, TweetCounters, TweetCounts
from storage.tweet_updates import Coalescer
from tests.gql import DELETE_TWEET, gql, sign_up, tweet
from tests.test_likes import LIKE
from tests.test_subscriptions import subscribed

SUBSCRIBE = """
subscription($ids: [ID!]!) {
  tweetUpdates(ids: $ids) { tweetId replyCount retweetCount quoteCount likeCount }
}
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_coalescing_leading_edge_then_latest_once_per_interval() -> None:
    clock = FakeClock()
    updates = Coalescer(interval=1.0, clock=clock)
    a, b = (1, 10), (1, 20)
    updates.offer(a, TweetCounts(likes=1))
    assert updates.due() == ([(a, TweetCounts(likes=1))], None)  # the leading edge: at once
    for n in range(2, 50):  # a storm within the interval: only the latest waits
        updates.offer(a, TweetCounts(likes=n))
    updates.offer(b, TweetCounts(replies=1))
    clock.now += 0.4
    ready, next_in = updates.due()
    assert ready == [(b, TweetCounts(replies=1))]  # b has its own interval
    assert next_in == pytest.approx(0.6)
    clock.now += 0.6
    assert updates.due() == ([(a, TweetCounts(likes=49))], None)  # the trailing edge
    clock.now += 5
    updates.offer(a, TweetCounts(likes=49))  # unchanged: not repeated
    assert updates.due() == ([], None)


def watching(api_url: str, token: str, ids: list[str]) -> AbstractAsyncContextManager:
    """A socket with tweetUpdates of `ids` subscribed as operation "1"."""
    return subscribed(api_url, token, query=SUBSCRIBE, variables={"ids": ids})


async def next_message(socket: ClientConnection) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 10))
        if message["type"] not in {"ping", "pong"}:
            return message


async def updates_until(socket: ClientConnection, done) -> list[tuple[float, dict]]:
    """(arrival time, update) until `done(update)` is true for one."""
    got: list[tuple[float, dict]] = []
    async with asyncio.timeout(15):
        while True:
            message = await next_message(socket)
            assert message["type"] == "next" and "errors" not in message["payload"], message
            update = message["payload"]["data"]["tweetUpdates"]
            got.append((time.monotonic(), update))
            if done(update):
                return got


async def test_a_like_storm_arrives_coalesced_and_ends_on_the_latest_counts(
    client: httpx.AsyncClient, api_url: str, settings: Settings
) -> None:
    author, _ = await sign_up(client, "author")
    hot = await tweet(client, author, "hot")
    calm = await tweet(client, author, "calm")
    fans = [(await sign_up(client, f"fan{n}"))[0] for n in range(30)]
    async with watching(api_url, author, [hot["id"], calm["id"], hot["id"]]) as socket:
        # First the counts as they are now, once per tweet (the id sent twice is watched once).
        snapshot: list[tuple[float, dict]] = []
        for _ in range(2):
            message = await next_message(socket)
            snapshot.append((time.monotonic(), message["payload"]["data"]["tweetUpdates"]))
        assert sorted(u["tweetId"] for _, u in snapshot) == sorted([hot["id"], calm["id"]])
        assert all(u["likeCount"] == 0 for _, u in snapshot)
        # The storm: 30 likes at once, then a reply counted elsewhere (as posting bumps it,
        # through another TweetCounters: every bump is published).
        await asyncio.gather(*(gql(client, LIKE, {"id": hot["id"]}, token=f) for f in fans))
        documents = open_redis(settings.documents_redis_url, timeout_seconds=5)
        counters = TweetCounters(documents)
        try:
            await counters.bump(*parse_tweet_global_id(calm["id"]), Count.REPLIES, 1)
            got = await updates_until(socket, lambda u: u["likeCount"] == 30)
            if not any(u["tweetId"] == calm["id"] for _, u in got):
                got += await updates_until(socket, lambda u: u["tweetId"] == calm["id"])
        finally:
            await counters.aclose()
            await documents.aclose()
    hot_updates = [(at, u) for at, u in snapshot + got if u["tweetId"] == hot["id"]]
    # Far fewer updates than likes, at most one per second (minus the socket's jitter)...
    assert len(hot_updates) <= 1 + 4, hot_updates
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(hot_updates)]
    assert all(gap >= 0.8 for gap in gaps), gaps
    # ...counts only ever growing here, ending on the exact final count.
    likes = [u["likeCount"] for _, u in hot_updates]
    assert likes == sorted(likes) and likes[-1] == 30
    calm_last = [u for _, u in got if u["tweetId"] == calm["id"]][-1]
    assert (calm_last["replyCount"], calm_last["likeCount"]) == (1, 0)


async def test_too_many_or_malformed_ids_are_refused_with_a_code(
    client: httpx.AsyncClient, api_url: str, settings: Settings
) -> None:
    token, _ = await sign_up(client, "ann")
    posted = await tweet(client, token, "x")
    too_many = [posted["id"]] * (settings.tweet_updates_max_ids + 1)
    for ids, code in ((too_many, "BAD_USER_INPUT"), ([], "BAD_USER_INPUT"), (["nope"], None)):
        async with watching(api_url, token, ids) as socket:
            message = await next_message(socket)
            assert message["type"] == "next", message
            [error] = message["payload"]["errors"]
            assert error["extensions"]["code"] == (code or "BAD_USER_INPUT"), error


async def test_deleted_or_unknown_tweets_are_refused_naming_the_id(
    client: httpx.AsyncClient, api_url: str
) -> None:
    """Finding E: only live tweets can be watched; the first id that is not one is named, and
    nothing is sent for the others."""
    token, _ = await sign_up(client, "ann")
    live = await tweet(client, token, "live")
    gone = await tweet(client, token, "gone")
    await gql(client, LIKE, {"id": gone["id"]}, token=token)
    await gql(client, DELETE_TWEET, {"id": gone["id"]}, token=token)
    author, tweet_id = parse_tweet_global_id(live["id"])
    unknown = tweet_global_id(author, tweet_id + 1)
    for ids, named in (([live["id"], gone["id"]], gone["id"]), ([unknown, live["id"]], unknown)):
        async with watching(api_url, token, ids) as socket:
            message = await next_message(socket)
            assert message["type"] == "next", message
            [error] = message["payload"]["errors"]
            assert error["extensions"]["code"] == "NOT_FOUND", error
            assert error["extensions"]["id"] == named and named in error["message"], error
            assert message["payload"]["data"] is None
            assert (await next_message(socket))["type"] == "complete"
