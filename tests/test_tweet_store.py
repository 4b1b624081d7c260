"""The tweet store on a single Redis and on a real 3-master Redis Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis

from storage.ids import IdGenerator
from storage.redis_clients import DocumentsRedis, open_redis
from storage.tweets import MediaNotAttachable, Tweet, TweetStore, timeline_key, tweet_key
from tests.conftest import RedisServer


@pytest.fixture
async def ids(documents: DocumentsRedis) -> AsyncIterator[IdGenerator]:
    generator = IdGenerator(documents)
    await generator.start()
    yield generator
    await generator.stop()


def tweet(ids: IdGenerator, author: int, text: str = "hello") -> Tweet:
    return Tweet(tweet_id=ids.next_id(), author_id=author, text=text, created_at_ms=1)


async def test_timeline_pages_newest_first_even_within_one_millisecond(
    documents: DocumentsRedis,
) -> None:
    frozen = IdGenerator(documents, clock=lambda: 1_800_000_000.0)
    await frozen.start()
    try:
        store = TweetStore(documents, idempotency_ttl_seconds=60)
        created = [tweet(frozen, 7, f"t{i}") for i in range(25)]  # all in one millisecond
        for item in created:
            await store.create(item, None, [])
    finally:
        await frozen.stop()
    seen: list[int] = []
    before = None
    while True:
        page = await store.timeline_page(7, first=10, before=before)
        seen += page.tweet_ids
        if not page.has_next_page:
            break
        before = page.tweet_ids[-1]
    assert seen == [t.tweet_id for t in reversed(created)]
    docs = await store.get_many([(7, t) for t in seen[:3]] + [(7, 12345)])
    assert [d.text if d else None for d in docs] == ["t24", "t23", "t22", None]


async def test_idempotency_key_returns_the_first_tweet(
    documents: DocumentsRedis, ids: IdGenerator
) -> None:
    store = TweetStore(documents, idempotency_ttl_seconds=60)
    first, second = tweet(ids, 7), tweet(ids, 7)
    assert await store.create(first, "key-1", []) == first.tweet_id
    assert await store.create(second, "key-1", []) == first.tweet_id
    assert await store.earlier_tweet(7, "key-1") == first.tweet_id
    assert (await store.timeline_page(7, 10, None)).tweet_ids == [first.tweet_id]
    [lost] = await store.get_many([(7, second.tweet_id)])  # the repeat's own id: a tombstone
    assert lost is not None and lost.deleted and lost.text == ""


async def test_tombstone_is_final_and_idempotent(
    documents: DocumentsRedis, ids: IdGenerator
) -> None:
    store = TweetStore(documents, idempotency_ttl_seconds=60)
    item = tweet(ids, 7)
    await store.create(item, None, [])
    assert await store.tombstone(item) is True
    assert await store.tombstone(item) is False
    [stored] = await store.get_many([(7, item.tweet_id)])
    assert stored is not None and stored.deleted and stored.text == ""
    assert (await store.timeline_page(7, 10, None)).tweet_ids == []


async def test_unpublished_media_cannot_be_attached(
    documents: DocumentsRedis, ids: IdGenerator
) -> None:
    store = TweetStore(documents, idempotency_ttl_seconds=60)
    await documents.hset("media:{7}:1", mapping={"status": "pending"})
    with pytest.raises(MediaNotAttachable):
        await store.create(tweet(ids, 7), None, ["media:{7}:1"])
    assert (await store.timeline_page(7, 10, None)).tweet_ids == []
    await documents.hset("media:{7}:1", mapping={"status": "published"})
    await store.create(tweet(ids, 7), None, ["media:{7}:1"])
    with pytest.raises(MediaNotAttachable):  # attached now: not twice
        await store.create(tweet(ids, 7), None, ["media:{7}:1"])


async def test_an_author_lives_on_one_node_and_authors_spread(
    redis_cluster: list[RedisServer],
) -> None:
    for node in redis_cluster:
        node.client().flushall()
    client = open_redis(redis_cluster[0].url, timeout_seconds=5, cluster=True)
    generator = IdGenerator(client)
    await generator.start()
    try:
        store = TweetStore(client, idempotency_ttl_seconds=60)
        authors = list(range(1, 31))
        created = {a: [tweet(generator, a) for _ in range(3)] for a in authors}
        for items in created.values():
            for item in items:
                await store.create(item, None, [])
        # One round of get_many across every node returns every document.
        refs = [(t.author_id, t.tweet_id) for items in created.values() for t in items]
        assert all(d is not None for d in await store.get_many(refs))
    finally:
        await generator.stop()
        await client.aclose()

    nodes = [node.client() for node in redis_cluster]
    homes: dict[int, int] = {}
    for author, items in created.items():
        keys = [timeline_key(author)] + [tweet_key(author, t.tweet_id) for t in items]
        holders = {i for i, node in enumerate(nodes) for key in keys if _has(node, key)}
        assert len(holders) == 1, (author, holders)
        homes[author] = holders.pop()
    assert set(homes.values()) == {0, 1, 2}
    for node in nodes:
        node.close()


def _has(node: redis.Redis, key: str) -> bool:
    """EXISTS on this node only (a node answers MOVED for keys it does not own)."""
    try:
        return bool(node.exists(key))
    except redis.exceptions.ResponseError:
        return False


def test_documents_without_the_engagement_fields_still_load() -> None:
    """Documents stored before replies, quotes and retweets load with those fields unset; new
    ones keep them through a round trip and through their tombstone."""
    legacy = (
        b'{"tweet_id":7,"author_id":3,"text":"old","created_at_ms":1,"mentions":[],'
        b'"hashtags":[],"media":[],"deleted":false}'
    )
    old = Tweet.from_json(legacy)
    assert (old.in_reply_to, old.conversation, old.quote_of, old.retweet_of) == (None,) * 4
    reply = Tweet(8, 4, "re", 2, in_reply_to=(3, 7), conversation=(3, 7), quote_of=(3, 7))
    assert Tweet.from_json(reply.to_json().encode()) == reply
    gone = Tweet.from_json(reply.tombstone().to_json().encode())
    assert gone.deleted and gone.text == "" and gone.in_reply_to == (3, 7)
