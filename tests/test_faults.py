"""Faults with real processes: a worker killed mid fan-out, the tweet store killed, the feed
cache flushed. (The graph server stopped under a running app: tests/test_ops.py.)"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from devstack.servers import FEED_REDIS_OPTIONS, free_port, start_redis
from graph.factory import open_graph
from resolvers.ids import parse_tweet_global_id, parse_user_global_id
from settings import Settings
from storage.fanout_stats import FanoutStats
from storage.feeds import FeedRef, feed_key, open_feed_cache
from storage.presence import Presence, live_channel
from storage.redis_clients import open_redis
from storage.tweets import TweetStore
from tests.gql import CREATE_TWEET, FOLLOW, gql, post, read_feed, sign_up, tweet
from tests.servers import run_worker, serve_api

AUDIENCE = 20_000
ONLINE = 200


@pytest.fixture
def crash_settings(settings: Settings) -> Settings:
    """A dead worker's messages come back within about a second: heartbeats time out after 1 s
    and every broker command checks for them (production: see README)."""
    return replace(
        settings,
        broker_heartbeat_timeout_ms=1_000,
        broker_maintenance_chance=1_000_000,
        fanout_batch_size=20,  # 1,000 delivery messages: plenty still queued when it dies
    )


async def count_live_events(feed_url: str, counts: collections.Counter, ready: asyncio.Event):
    client = aioredis.Redis.from_url(feed_url)
    pubsub = client.pubsub()
    await pubsub.psubscribe("live:*")
    ready.set()
    try:
        async for message in pubsub.listen():
            if message["type"] == "pmessage":
                counts[message["channel"]] += 1
    finally:
        await pubsub.aclose()
        await client.aclose()


async def test_worker_killed_mid_fan_out(crash_settings: Settings, tmp_path: Path) -> None:
    settings = crash_settings
    graph = open_graph(settings)
    feeds = open_feed_cache(settings)
    stats = FanoutStats(feeds.client)
    events: collections.Counter = collections.Counter()
    ready = asyncio.Event()
    listener = asyncio.create_task(count_live_events(settings.feed_redis_url, events, ready))
    try:
        with serve_api(settings) as url:
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                token, author_gid = await sign_up(client, "author")
                author = parse_user_global_id(author_gid)
                followers = list(range(10**15, 10**15 + AUDIENCE))
                await graph.bulk_create_users([(f, f"f{f}") for f in followers])
                await graph.bulk_follow([(f, author, 1) for f in followers])
                await feeds.create_empty(followers)  # all active
                await Presence(feeds.client).mark_online_many(followers[:ONLINE], 300)
                await ready.wait()

                with run_worker(settings, tmp_path / "worker1.log") as first:
                    posted = await tweet(client, token, "to twenty thousand")
                    _, tweet_id = parse_tweet_global_id(posted["id"])
                    async with asyncio.timeout(60):
                        while len(await stats.batches_of(tweet_id)) < 3:
                            await asyncio.sleep(0.01)
                    first.kill()  # SIGKILL, mid fan-out
                done_before = len(await stats.batches_of(tweet_id))
                assert done_before < AUDIENCE // settings.fanout_batch_size, "finished too soon"

                with run_worker(settings, tmp_path / "worker2.log"):
                    ref = FeedRef(tweet_id, author)
                    async with asyncio.timeout(90):
                        while await feeds_holding(feeds.client, followers, ref) < AUDIENCE:
                            await asyncio.sleep(0.2)
                    await asyncio.sleep(0.5)  # let any last live event arrive
        online = {live_channel(f).encode() for f in followers[:ONLINE]}
        assert set(events) == online
        assert set(events.values()) == {1}  # each online follower heard once, none twice
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await graph.close()
        await feeds.client.aclose()


async def feeds_holding(client: aioredis.Redis, viewers: list[int], ref: FeedRef) -> int:
    async with client.pipeline(transaction=False) as pipe:
        for viewer in viewers:
            pipe.zscore(feed_key(viewer), ref.member())
        return sum(score is not None for score in await pipe.execute())


async def test_acknowledged_tweets_survive_kill_9_of_the_tweet_store(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    data_dir = tmp_path / "tweets"
    server = start_redis("tweets", port, data_dir)  # AOF on, appendfsync everysec
    on_own_store = replace(settings, documents_redis_url=f"redis://127.0.0.1:{port}/0")
    acknowledged: list[tuple[int, int]] = []
    try:
        with serve_api(on_own_store) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                token, _ = await sign_up(client, "writer")

                async def write(i: int) -> None:
                    body = await post(client, CREATE_TWEET, {"text": f"tweet {i}"}, token=token)
                    if body.get("data") and body["data"]["createTweet"]:
                        acknowledged.append(
                            parse_tweet_global_id(body["data"]["createTweet"]["id"])
                        )

                writers = [asyncio.create_task(write(i)) for i in range(200)]
                async with asyncio.timeout(30):
                    while len(acknowledged) < 50:
                        await asyncio.sleep(0.001)
                server.kill()  # while writes are still in flight
                await asyncio.gather(*writers, return_exceptions=True)
        server = start_redis("tweets", port, data_dir)  # replays the AOF
        client = open_redis(f"redis://127.0.0.1:{port}/0", timeout_seconds=5)
        try:
            found = await TweetStore(client, idempotency_ttl_seconds=60).get_many(acknowledged)
        finally:
            await client.aclose()
        assert len(acknowledged) >= 50
        assert all(t is not None and not t.deleted for t in found)
    finally:
        server.stop()


async def test_flushed_feed_cache_rebuilds_correct_feeds(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    feed_server = start_redis("feeds", port, tmp_path / "feeds", appendonly=False,
                              extra=FEED_REDIS_OPTIONS)  # fmt: skip
    own_feeds = replace(settings, feed_redis_url=f"redis://127.0.0.1:{port}/0")
    try:
        with serve_api(own_feeds) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                users = {name: await sign_up(client, name) for name in ("ann", "bob", "cat")}
                for followee in ("bob", "cat"):
                    await gql(client, FOLLOW, {"id": users[followee][1]}, token=users["ann"][0])
                for i in range(5):
                    for name in ("bob", "cat", "ann"):
                        await tweet(client, users[name][0], f"{name} {i}")
                before = await read_feed(client, users["ann"][0], first=4)
                assert len(before) == 15
                flusher = aioredis.Redis(port=port)
                await flusher.flushall()
                assert await flusher.dbsize() == 0
                assert await read_feed(client, users["ann"][0], first=4) == before
                ann = parse_user_global_id(users["ann"][1])
                assert await flusher.exists(feed_key(ann))  # rebuilt by the miss path
                await flusher.aclose()
    finally:
        feed_server.stop()
