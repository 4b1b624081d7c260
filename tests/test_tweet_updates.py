"""tweetUpdates: count changes of the tweets a client shows, over a real WebSocket, coalesced
(at most one update per tweet per second) and ending on the latest counts; a deleted tweet told
once and no longer watched, on one server and on a Redis Cluster; and the coalescing decision
on its own, with a fake clock."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import replace

import httpx
import pytest
from redis.asyncio.cluster import RedisCluster
from websockets.asyncio.client import ClientConnection

from resolvers.ids import parse_tweet_global_id, tweet_global_id
from settings import Settings
from storage.redis_clients import DocumentsRedis, node_of, open_redis
from storage.tweet_counts import Count, TweetCounters, TweetCounts, counts_channel
from storage.tweet_updates import Coalescer, TweetUpdate, TweetUpdatesHub
from storage.tweets import Tweet, TweetStore
from tests.conftest import RedisServer
from tests.gql import DELETE_TWEET, gql, sign_up, tweet
from tests.servers import serve_api
from tests.test_likes import LIKE
from tests.test_subscriptions import subscribed

SUBSCRIBE = """
subscription($ids: [ID!]!) {
  tweetUpdates(ids: $ids) { tweetId replyCount retweetCount quoteCount likeCount }
}
"""
SUBSCRIBE_WITH_DELETED = SUBSCRIBE.replace("likeCount }", "likeCount deleted }")


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
    assert updates.due() == ([TweetUpdate(a, TweetCounts(likes=1))], None)  # the leading edge
    for n in range(2, 50):  # a storm within the interval: only the latest waits
        updates.offer(a, TweetCounts(likes=n))
    updates.offer(b, TweetCounts(replies=1))
    clock.now += 0.4
    ready, next_in = updates.due()
    assert ready == [TweetUpdate(b, TweetCounts(replies=1))]  # b has its own interval
    assert next_in == pytest.approx(0.6)
    clock.now += 0.6
    assert updates.due() == ([TweetUpdate(a, TweetCounts(likes=49))], None)  # the trailing edge
    clock.now += 5
    updates.offer(a, TweetCounts(likes=49))  # unchanged: not repeated
    assert updates.due() == ([], None)


def test_a_deletion_is_due_at_once_in_place_of_waiting_counts() -> None:
    clock = FakeClock()
    updates = Coalescer(interval=1.0, clock=clock)
    a, b = (1, 10), (1, 20)
    updates.offer(a, TweetCounts(likes=1))
    updates.offer(b, TweetCounts(likes=5))
    assert len(updates.due()[0]) == 2
    clock.now += 0.1
    updates.offer(a, TweetCounts(likes=2))  # would wait for a's interval...
    updates.offer_deletion(a, TweetCounts(likes=2))  # ...a deletion does not
    updates.offer_deletion(b, TweetCounts(likes=5))  # nor is it dropped as unchanged
    assert updates.due() == (
        [
            TweetUpdate(a, TweetCounts(likes=2), deleted=True),
            TweetUpdate(b, TweetCounts(likes=5), deleted=True),
        ],
        None,
    )
    assert updates.idle()


def watching(
    api_url: str, token: str, ids: list[str], query: str = SUBSCRIBE
) -> AbstractAsyncContextManager:
    """A socket with tweetUpdates of `ids` (`query`) subscribed as operation "1"."""
    return subscribed(api_url, token, query=query, variables={"ids": ids})


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


async def subscribers(client: DocumentsRedis, channel: str) -> int:
    """How many connections listen on `channel` (on a cluster: on its node, sharded)."""
    if isinstance(client, RedisCluster):
        node = node_of(client, channel)
        reply = await client.execute_command("PUBSUB", "SHARDNUMSUB", channel, target_nodes=node)
    else:
        reply = await client.execute_command("PUBSUB", "NUMSUB", channel)
    return int(reply[1])


async def listened(client: DocumentsRedis, channels: dict[str, int]) -> None:
    """Wait until each channel has its number of listeners (unsubscribing is in the
    background)."""
    async with asyncio.timeout(10):
        while [await subscribers(client, c) for c in channels] != list(channels.values()):
            await asyncio.sleep(0.02)


async def test_the_hub_tells_a_deletion_once_at_once_and_stops_watching_the_tweet(
    documents: DocumentsRedis,
) -> None:
    """On a single server and a cluster (sharded pub/sub): a tweet deleted before the watch
    subscribed is told at once; one deleted later is told after the counts published before
    its deletion, even while counts wait for the interval (60 s here); nothing more comes for
    either, their channels are unsubscribed, and once all are deleted the watch is finished."""
    tweets = TweetStore(documents, idempotency_ttl_seconds=60)
    x, y, z = (
        Tweet(tweet_id=10 + n, author_id=n, text=f"t{n}", created_at_ms=1) for n in (1, 2, 3)
    )
    for posted in (x, y, z):
        await tweets.create(posted, None, [])
    xr, yr, zr = ((t.author_id, t.tweet_id) for t in (x, y, z))
    await tweets.tombstone(z)  # deleted between the subscription's check and its watch
    counters = TweetCounters(documents)
    hub = TweetUpdatesHub(documents, counters, tweets, interval_seconds=60)
    await hub.start()
    try:
        watch = await hub.watch([xr, yr, zr])
        async with asyncio.timeout(10):
            assert sorted(await watch.updates.next(), key=lambda u: u.ref) == [
                TweetUpdate(xr, TweetCounts()),
                TweetUpdate(yr, TweetCounts()),
                TweetUpdate(zr, TweetCounts(), deleted=True),
            ]
            channels = {counts_channel(*r): n for r, n in ((xr, 1), (yr, 1), (zr, 0))}
            await listened(documents, channels)
            await counters.bump(*yr, Count.LIKES, 1)  # published, held by the interval
            await tweets.tombstone(y)
            await counters.publish_deleted(*yr)
            assert await watch.updates.next() == [
                TweetUpdate(yr, TweetCounts(likes=1), deleted=True)
            ]
            await listened(documents, {counts_channel(*yr): 0, counts_channel(*xr): 1})
            await counters.publish_deleted(*yr)  # a repeated delete: not told again
            assert not watch.finished()
            await tweets.tombstone(x)
            await counters.publish_deleted(*xr)
            assert await watch.updates.next() == [TweetUpdate(xr, TweetCounts(), deleted=True)]
            assert watch.finished()
            await listened(documents, {counts_channel(*xr): 0})
        hub.unwatch(watch)  # as the subscription's end does: nothing left to release
    finally:
        await hub.stop()
        await counters.aclose()


@pytest.fixture(params=["single", "cluster"])
def any_api(request: pytest.FixtureRequest, settings: Settings) -> Iterator[str]:
    """The app with its documents on one server, then on a real 3-master Redis Cluster."""
    if request.param == "cluster":
        nodes: list[RedisServer] = request.getfixturevalue("redis_cluster")
        for node in nodes:
            node.client().flushall()
        settings = replace(settings, documents_redis_url=nodes[1].url, documents_redis_cluster=True)
    with serve_api(settings) as url:
        yield url


async def test_a_deleted_tweet_is_told_once_and_the_others_keep_updating(any_api: str) -> None:
    async with httpx.AsyncClient(base_url=any_api, timeout=30) as client:
        author, _ = await sign_up(client, "author")
        viewer, _ = await sign_up(client, "viewer")
        fans = [(await sign_up(client, f"fan{n}"))[0] for n in range(3)]
        kept = await tweet(client, author, "kept")
        doomed = await tweet(client, author, "doomed")
        ids = [kept["id"], doomed["id"]]
        async with watching(any_api, viewer, ids, SUBSCRIBE_WITH_DELETED) as socket:
            snapshot = [u for _, u in await updates_until(socket, lambda u: True)]
            snapshot += [u for _, u in await updates_until(socket, lambda u: True)]
            assert sorted(u["tweetId"] for u in snapshot) == sorted(ids)
            assert not any(u["deleted"] for u in snapshot)
            await gql(client, LIKE, {"id": doomed["id"]}, token=fans[0])
            await updates_until(socket, lambda u: u["tweetId"] == doomed["id"])
            # Deleted right after a counts update (within the tweet's interval): told at once.
            await gql(client, DELETE_TWEET, {"id": doomed["id"]}, token=author)
            [(_, gone)] = await updates_until(socket, lambda u: True)
            assert gone == {
                "tweetId": doomed["id"],
                "replyCount": 0,
                "retweetCount": 0,
                "quoteCount": 0,
                "likeCount": 1,
                "deleted": True,
            }
            for fan in fans:
                await gql(client, LIKE, {"id": kept["id"]}, token=fan)
            later = [u for _, u in await updates_until(socket, lambda u: u["likeCount"] == 3)]
            assert {u["tweetId"] for u in later} == {kept["id"]}, later
            assert not any(u["deleted"] for u in later)
            # The last watched tweet deleted: its update, then the subscription completes.
            await gql(client, DELETE_TWEET, {"id": kept["id"]}, token=author)
            [(_, last)] = await updates_until(socket, lambda u: True)
            assert (last["tweetId"], last["likeCount"], last["deleted"]) == (kept["id"], 3, True)
            assert await next_message(socket) == {"id": "1", "type": "complete"}
