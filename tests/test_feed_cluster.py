"""The feed role on a real 3-master Redis Cluster (FEED_REDIS_CLUSTER), the documents on another:
a fan-out batch costs one script call per node holding part of it, live events, revocations and
tweet invalidations travel over sharded pub/sub, and the app works end to end (a real worker, a
real WebSocket)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.crc import key_slot

from resolvers.ids import parse_tweet_global_id, parse_user_global_id
from settings import Settings
from social.fanout_plan import live_event
from storage import lua
from storage.fanout_stats import FanoutStats
from storage.feeds import FeedCache, FeedRef, feed_key, open_feed_cache
from storage.followee_sets import FolloweeSets, followees_key, following_version_key
from storage.presence import HUB_CHANNEL, Presence, live_channel, presence_key
from storage.tweet_cache import CHANNEL as INVALIDATIONS
from tests.conftest import CLUSTER_SLOT_RANGES, RedisServer
from tests.gql import (
    CREATE_TWEET,
    DELETE_TWEET,
    FOLLOW,
    UNFOLLOW,
    gql,
    gql_error,
    post,
    read_feed,
    sign_up,
    tweet,
)
from tests.servers import queues_idle, run_worker, serve_api, wait_until
from tests.test_round_trips import END, START, CommandLog
from tests.test_subscriptions import next_update, subscribed
from tests.test_ws_auth import answer

FEED_QUEUES = ("fanout", "feeds")
MAX_SIGN_UPS = 40  # to find followers whose feeds sit on every node (about 6 suffice)


@pytest.fixture
def cluster_settings(
    settings: Settings, redis_cluster: list[RedisServer], feed_cluster: list[RedisServer]
) -> Settings:
    """Documents on one cluster, the feed role on another (each URL names one node); the broker
    and the graph as usual. Sockets re-check tokens only when told (a revocation)."""
    for node in (*redis_cluster, *feed_cluster):
        node.client().flushall()
    return replace(
        settings,
        documents_redis_url=redis_cluster[1].url,
        documents_redis_cluster=True,
        feed_redis_url=feed_cluster[2].url,
        feed_redis_cluster=True,
        token_recheck_seconds=3600,
    )


def home(key: str) -> int:
    """The index of the fixture node whose slot range holds `key` (CLUSTER ADDSLOTSRANGE)."""
    slot = key_slot(key.encode())
    return next(i for i, (low, high) in enumerate(CLUSTER_SLOT_RANGES) if low <= slot <= high)


def holders(nodes: list[RedisServer], key: str) -> list[int]:
    """The nodes where `key` really is, asked of each node directly (a node lists only the keys
    it holds; EXISTS would answer MOVED elsewhere)."""
    found = []
    for index, node in enumerate(nodes):
        client = node.client()
        try:
            local = client.execute_command("CLUSTER", "GETKEYSINSLOT", key_slot(key.encode()), 100)
            if key.encode() in local:
                found.append(index)
        finally:
            client.close()
    return found


async def idle(settings: Settings) -> None:
    await asyncio.to_thread(wait_until, lambda: queues_idle(settings, FEED_QUEUES), 30)


async def start_logs(nodes: list[RedisServer]) -> list[CommandLog]:
    logs = [await asyncio.to_thread(CommandLog, node.url) for node in nodes]
    for log in logs:
        log.mark(START)
    return logs


async def stop_logs(logs: list[CommandLog]) -> list[list[str]]:
    for log in logs:
        log.mark(END)
    for log in logs:
        await asyncio.to_thread(log.close)
    return [log.lines for log in logs]


def script_calls(lines: list[str], name: str) -> list[list[str]]:
    """The calls of script `name` (cached: EVALSHA) among MONITOR lines, each as the feed keys
    it names (the declared one first, then those in ARGV). None may have gone by source."""
    assert not [line for line in lines if line.upper().startswith("EVAL ")], lines
    calls = []
    for line in lines:
        words = line.split(" ")
        if words[0].upper() == "EVALSHA" and words[1] == lua.sha(name):
            calls.append([w for w in words[3:] if w.startswith("feed:{")])
    return calls


async def shard_messages(
    nodes: list[RedisServer], channels: list[str]
) -> tuple[list[PubSub], list[aioredis.Redis]]:
    """Plain SSUBSCRIBEs, each on the node owning the channel's slot (not through our code)."""
    clients, subscriptions = [], []
    for channel in channels:
        client = aioredis.Redis(port=nodes[home(channel)].port)
        subscription = client.pubsub()
        await subscription.ssubscribe(channel)
        clients.append(client)
        subscriptions.append(subscription)
    return subscriptions, clients


async def drain(subscriptions: list[PubSub], seconds: float) -> list[tuple]:
    """Every shard message the subscriptions receive within `seconds`."""
    received = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for subscription in subscriptions:
            message = await subscription.get_message(timeout=0.01)
            if message is not None and message["type"] == "smessage":
                received.append((message["channel"].decode(), message["data"]))
    return received


async def test_a_batch_costs_one_script_call_per_node_and_publishes_on_shard_channels(
    cluster_settings: Settings, feed_cluster: list[RedisServer]
) -> None:
    """The stores on the feed cluster directly: pipelines spanning nodes (create_empty,
    mark_online_many, invalidate_following_many), and push/unpush grouped per node."""
    feeds = open_feed_cache(cluster_settings)
    try:
        viewers = list(range(1, 31))  # their slots spread over the three nodes
        nodes_of_viewers = {home(feed_key(v)) for v in viewers}
        assert nodes_of_viewers == {0, 1, 2}
        active, online = viewers[:20], viewers[::3]
        await feeds.create_empty(active)
        assert all(holders(feed_cluster, feed_key(v)) == [home(feed_key(v))] for v in active)
        await Presence(feeds.client).mark_online_many(online, 60)
        channels = [live_channel(v) for v in viewers]
        subscriptions, clients = await shard_messages(feed_cluster, channels)
        ref = FeedRef(tweet_id=10**17, author_id=99)
        event = live_event("tweet", 99, 10**17)
        for node in feed_cluster:  # so that the calls counted below go by SHA
            admin = node.client()
            admin.script_load(lua.source("push"))
            admin.close()

        logs = await start_logs(feed_cluster)
        assert await feeds.push_to_feeds(ref, viewers, event) == len(active)
        lines = await stop_logs(logs)
        for index, node_lines in enumerate(lines):
            mine = sorted(feed_key(v) for v in viewers if home(feed_key(v)) == index)
            calls = script_calls(node_lines, "push")
            assert [sorted(c[1:]) for c in calls] == [mine], node_lines  # one, with its own

        assert await feeds.push_to_feeds(ref, viewers, event) == 0  # a retried batch
        heard = await drain(subscriptions, 0.5)
        expected = sorted((live_channel(v), event.encode()) for v in set(active) & set(online))
        assert sorted(heard) == expected  # once each, on the viewer's own shard channel
        assert [await feeds.members(v) for v in active] == [[ref]] * len(active)
        assert not await feeds.client.exists(feed_key(viewers[-1]))  # never created

        assert await feeds.unpush_from_feeds(ref, viewers, event) == len(active)
        assert [await feeds.members(v) for v in active] == [[]] * len(active)
        assert len(await drain(subscriptions, 0.5)) == len(expected)

        followee_sets = FolloweeSets(feeds.client)
        for viewer in viewers[:6]:
            version = await followee_sets.following_version(viewer)
            assert await followee_sets.fill_following(viewer, [7, 8], [], version)
        assert await followee_sets.follows(viewers[0], [7, 9]) == [True, False]
        await followee_sets.invalidate_following_many(viewers[:6])
        for viewer in viewers[:6]:
            assert await followee_sets.follows(viewer, [7]) is None
            assert not await feeds.client.exists(followees_key(viewer))
            assert await feeds.client.get(following_version_key(viewer)) == b"1"
        for subscription, client in zip(subscriptions, clients, strict=True):
            await subscription.aclose()
            await client.aclose()
    finally:
        await feeds.client.aclose()


async def followers_on_every_node(client: httpx.AsyncClient) -> dict[int, tuple[str, str]]:
    """Sign up followers until each node of the feed cluster holds at least two of their feeds:
    {user id: (token, global id)}."""
    followers: dict[int, tuple[str, str]] = {}
    for n in range(MAX_SIGN_UPS):
        token, gid = await sign_up(client, f"fan{n}")
        followers[parse_user_global_id(gid)] = (token, gid)
        per_node = [sum(home(feed_key(v)) == i for v in followers) for i in range(3)]
        if min(per_node) >= 2:
            return followers
    raise AssertionError(f"{MAX_SIGN_UPS} sign-ups did not cover every node")


async def wait_present(feeds: FeedCache, viewer: int) -> None:
    """The live subscription is registered once the viewer's presence key exists."""
    async with asyncio.timeout(10):
        while not await feeds.client.exists(presence_key(viewer)):
            await asyncio.sleep(0.02)


async def test_the_app_with_its_feeds_on_a_cluster(
    cluster_settings: Settings,
    redis_cluster: list[RedisServer],
    feed_cluster: list[RedisServer],
    tmp_path: Path,
) -> None:
    settings = cluster_settings
    feeds = open_feed_cache(settings)
    stats = FanoutStats(feeds.client)
    try:
        with serve_api(settings) as url, run_worker(settings, tmp_path / "worker.log"):
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                ann, ann_gid = await sign_up(client, "ann")
                ann_id = parse_user_global_id(ann_gid)
                followers = await followers_on_every_node(client)
                for token, _ in followers.values():
                    await gql(client, FOLLOW, {"id": ann_gid}, token=token)
                    assert await read_feed(client, token) == []  # a miss: the feed is built
                # Each follower's feed key is on the node of its slot, and they span all three.
                where = {v: holders(feed_cluster, feed_key(v)) for v in followers}
                assert all(where[v] == [home(feed_key(v))] for v in followers), where
                assert {nodes[0] for nodes in where.values()} == {0, 1, 2}

                await tweet(client, ann, "warm-up")  # caches push.lua on every node
                await idle(settings)
                logs = await start_logs(feed_cluster)
                counted = await tweet(client, ann, "counted")
                await idle(settings)
                lines = await stop_logs(logs)
                _, counted_id = parse_tweet_global_id(counted["id"])
                batches = await stats.batches_of(counted_id)
                assert [(b.followers, b.inserted) for b in batches] == [
                    (len(followers), len(followers))
                ]  # one delivery message, one batch...
                own = feed_key(ann_id)  # createTweet's push into the author's own feed
                for index, node_lines in enumerate(lines):  # ...one script call per node
                    calls = [c for c in script_calls(node_lines, "push") if c[0] != own]
                    mine = sorted(feed_key(v) for v in followers if home(feed_key(v)) == index)
                    assert [sorted(c[1:]) for c in calls] == [mine], node_lines

                for token, _ in followers.values():  # cache hits
                    assert await read_feed(client, token) == ["counted", "warm-up"]
                evicted = next(iter(followers))  # a miss: its feed is gone, the read rebuilds it
                node = feed_cluster[home(feed_key(evicted))].client()
                node.delete(feed_key(evicted))
                node.close()
                assert await read_feed(client, followers[evicted][0]) == ["counted", "warm-up"]
                async with asyncio.timeout(10):
                    while len(await feeds.members(evicted)) < 2:  # written back
                        await asyncio.sleep(0.02)

                viewer, leaver = list(followers)[:2]
                token = followers[viewer][0]
                invalidations, clients = await shard_messages(redis_cluster, [INVALIDATIONS])
                async with subscribed(url, token) as socket:
                    await wait_present(feeds, viewer)
                    live = await tweet(client, ann, "live")
                    update = await next_update(socket)
                    assert (update["__typename"], update["tweet"]["text"]) == ("FeedTweet", "live")
                    await gql(client, DELETE_TWEET, {"id": live["id"]}, token=ann)
                    gone = await next_update(socket)
                    assert gone == {"__typename": "TweetDeleted", "tweetId": live["id"]}
                    _, live_id = parse_tweet_global_id(live["id"])
                    heard = await drain(invalidations, 0.3)
                    assert heard == [(INVALIDATIONS, f"{ann_id}:{live_id}".encode())]
                    # logOutEverywhere: the revocation travels on the hub's shard channel.
                    assert await gql(client, "mutation { logOutEverywhere }", token=token)
                    assert await answer(socket) == (4401, "Unauthorized: token expired or revoked")
                for subscription, documents in zip(invalidations, clients, strict=True):
                    await subscription.aclose()
                    await documents.aclose()
                hub_node = feed_cluster[home(HUB_CHANNEL)].client()
                assert hub_node.execute_command("PUBSUB", "SHARDNUMSUB", HUB_CHANNEL)[1] == 1
                hub_node.close()

                leaver_token = followers[leaver][0]
                await gql(client, UNFOLLOW, {"id": ann_gid}, token=leaver_token)
                assert await read_feed(client, leaver_token) == []  # hidden at once
                await idle(settings)
                assert await feeds.members(leaver) == []  # reclaimed by reconcile
    finally:
        await feeds.client.aclose()


async def test_rate_limits_on_a_feed_cluster(
    cluster_settings: Settings, redis_cluster: list[RedisServer], feed_cluster: list[RedisServer]
) -> None:
    tight = replace(cluster_settings, rate_tweets="2/60", rate_follows="1/60")
    with serve_api(tight) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            ann, _ = await sign_up(client, "ann")
            _, bob_gid = await sign_up(client, "bob")
            _, cy_gid = await sign_up(client, "cy")
            for text in ("one", "two"):
                await tweet(client, ann, text)
            body = await post(client, CREATE_TWEET, {"text": "three"}, token=ann)
            assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
            await gql(client, FOLLOW, {"id": bob_gid}, token=ann)
            assert (await gql_error(client, FOLLOW, {"id": cy_gid}, token=ann))[0] == "RATE_LIMITED"
    counted = {}
    for role, nodes in (("documents", redis_cluster), ("feeds", feed_cluster)):
        keys = []
        for node in nodes:
            client = node.client()
            keys += [k.decode() for k in client.keys("rate:*")]
            client.close()
        counted[role] = keys
    assert counted["documents"] == []
    assert {k.split(":")[1] for k in counted["feeds"]} >= {"tweet", "follow"}
