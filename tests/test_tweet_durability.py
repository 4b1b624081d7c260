"""Durable createTweet (TWEET_DURABLE_REPLICAS): a tweet is acknowledged only once a replica of its
shard confirmed it (WAIT on the connection that wrote it); otherwise it is undone and the request
fails with SERVICE_UNAVAILABLE. Real primary + replica; the replica is frozen with SIGSTOP."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from resolvers.ids import tweet_global_id
from settings import Settings
from storage.redis_clients import node_of
from storage.tweets import (
    MediaNotAttachable,
    Tweet,
    TweetStore,
    idempotency_key,
    timeline_key,
    tweet_key,
)
from tests.conftest import RedisServer
from tests.gql import CREATE_TWEET, TIMELINE, TWEET, gql, post, sign_up, tweet
from tests.replicas import Node, calls, stopped, wait_caught_up
from tests.servers import serve_api

AUTHOR = 77


def new_tweet(tweet_id: int, author: int = AUTHOR) -> Tweet:
    return Tweet(tweet_id=tweet_id, author_id=author, text=f"t{tweet_id}", created_at_ms=1)


@pytest.fixture
async def store(documents_pair: tuple[Node, Node]) -> AsyncIterator[TweetStore]:
    primary, _ = documents_pair
    with primary.client() as admin:
        admin.flushall()
    client = aioredis.Redis.from_url(primary.url, socket_timeout=2)
    yield TweetStore(client, idempotency_ttl_seconds=60)
    await client.aclose()


async def test_a_write_confirmed_by_the_replica(
    store: TweetStore, documents_pair: tuple[Node, Node]
) -> None:
    _, replica = documents_pair
    created = await store.create_durably(new_tweet(1), "key-1", [], replicas=1, timeout_ms=2000)
    assert (created.tweet_id, created.replicas_acked) == (1, 1)
    with replica.client() as r:  # acknowledged means the replica holds it
        assert r.exists(tweet_key(AUTHOR, 1))
    # A repeat of the idempotency key answers the first tweet.
    again = await store.create_durably(new_tweet(2), "key-1", [], replicas=1, timeout_ms=2000)
    assert again.tweet_id == 1


async def test_a_frozen_replica_times_out_and_abandon_undoes_the_tweet(
    store: TweetStore, documents_pair: tuple[Node, Node]
) -> None:
    primary, replica = documents_pair
    wait_caught_up(primary, replica)
    with stopped(replica):
        started = time.monotonic()
        created = await store.create_durably(new_tweet(5), "key-5", [], replicas=1, timeout_ms=200)
        assert 0.2 <= time.monotonic() - started < 1.0
        assert (created.tweet_id, created.replicas_acked) == (5, 0)
        assert await store.abandon(new_tweet(5), "key-5", [])
    [gone] = await store.get_many([(AUTHOR, 5)])
    assert gone is not None and gone.deleted and gone.text == ""
    assert (await store.timeline_page(AUTHOR, 10, None)).tweet_ids == []
    assert await store.earlier_tweet(AUTHOR, "key-5") is None  # a retry posts afresh


async def test_abandon_gives_back_the_media_and_leaves_other_tweets_alone(
    store: TweetStore, documents_pair: tuple[Node, Node]
) -> None:
    primary, _ = documents_pair
    media = f"media:{{{AUTHOR}}}:9"
    with primary.client() as p:
        p.hset(media, mapping={"status": "published", "public_key": "k"})
    created = await store.create_durably(new_tweet(6), "key-6", [media], replicas=0, timeout_ms=1)
    assert created.tweet_id == 6
    with primary.client() as p:
        assert p.hget(media, "status") == "attached"
    await store.create_durably(new_tweet(7), "key-7", [], replicas=0, timeout_ms=1)
    assert await store.abandon(new_tweet(6), "key-6", [media])
    assert not await store.abandon(new_tweet(6), "key-6", [media])  # repeating changes nothing
    with primary.client() as p:
        assert p.hgetall(media) == {"status": "published", "public_key": "k"}
    assert (await store.timeline_page(AUTHOR, 10, None)).tweet_ids == [7]
    assert await store.earlier_tweet(AUTHOR, "key-7") == 7
    # Media refused by the script: nothing written, the store's own error.
    with pytest.raises(MediaNotAttachable):
        await store.create_durably(
            new_tweet(8), None, [f"media:{{{AUTHOR}}}:404"], replicas=0, timeout_ms=1
        )
    assert (await store.get_many([(AUTHOR, 8)])) == [None]


async def test_on_a_cluster_the_wait_goes_to_the_node_of_the_authors_slot(
    redis_cluster: list[RedisServer],
) -> None:
    """This cluster has no replicas: WAIT 1 answers 0 after its timeout, on the right node."""
    cluster = RedisCluster.from_url(redis_cluster[0].url, socket_timeout=2)
    try:
        tweets = TweetStore(cluster, idempotency_ttl_seconds=60)
        await cluster.initialize()
        by_port = {server.port: Node(server.process, server.port) for server in redis_cluster}
        for author in (101, 202, 303, 404):
            node = by_port[node_of(cluster, tweet_key(author, 1)).port]
            before = calls(node, "wait")
            created = await tweets.create_durably(
                new_tweet(1, author), None, [], replicas=1, timeout_ms=20
            )
            assert (created.tweet_id, created.replicas_acked) == (1, 0)
            assert calls(node, "wait") == before + 1
            assert await tweets.abandon(new_tweet(1, author), None, [])
    finally:
        await cluster.aclose()


@pytest.fixture
async def durable_api(
    settings: Settings, documents_pair: tuple[Node, Node]
) -> AsyncIterator[httpx.AsyncClient]:
    primary, _ = documents_pair
    with primary.client() as admin:
        admin.flushall()
    durable = replace(
        settings,
        documents_redis_url=primary.url,
        tweet_durable_replicas=1,
        tweet_durable_timeout_ms=300,
    )
    with serve_api(durable) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield http


async def timeline(client: httpx.AsyncClient, username: str) -> list[str]:
    data = await gql(client, TIMELINE, {"u": username, "first": 10})
    return [edge["node"]["text"] for edge in data["user"]["tweets"]["edges"]]


async def test_create_tweet_is_acknowledged_only_once_replicated(
    durable_api: httpx.AsyncClient, documents_pair: tuple[Node, Node]
) -> None:
    client = durable_api
    primary, replica = documents_pair
    token, _ = await sign_up(client, "dora")
    await tweet(client, token, "replicated")
    with replica.client() as r:
        assert any(json.loads(r.get(k))["text"] == "replicated" for k in r.keys("tweet:*"))

    with stopped(replica):
        started = time.monotonic()
        body = await post(
            client, CREATE_TWEET, {"text": "not replicated", "key": "k-1"}, token=token
        )
        elapsed = time.monotonic() - started
    [error] = body["errors"]
    assert body["data"] is None
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert error["extensions"]["reason"] == "NOT_REPLICATED"
    assert "idempotencyKey" in error["message"] and "not posted" in error["message"]
    assert elapsed < 2.0  # the 300 ms wait, not a client timeout

    # Nothing of it is readable: not in the timeline, not by its id.
    assert await timeline(client, "dora") == ["replicated"]
    with primary.client() as p:
        undone = [json.loads(p.get(k)) for k in p.keys("tweet:*")]
        assert not p.keys("idem:*")
    lost = [t for t in undone if t["deleted"]]
    assert len(lost) == 1 and lost[0]["text"] == ""
    lost_id = tweet_global_id(lost[0]["author_id"], lost[0]["tweet_id"])
    assert (await gql(client, TWEET, {"id": lost_id}))["tweet"] is None

    # Once the replica is back, the same request with the same key succeeds.
    wait_caught_up(primary, replica)
    retried = await tweet(client, token, "not replicated", key="k-1")
    assert retried["text"] == "not replicated"
    assert await timeline(client, "dora") == ["not replicated", "replicated"]
    with primary.client() as p:
        assert p.get(idempotency_key(int(lost[0]["author_id"]), "k-1")) is not None
        assert p.zcard(timeline_key(int(lost[0]["author_id"]))) == 2
