"""Tweets over GraphQL/HTTP against the real app: create, read, timelines, delete, bad input."""

from __future__ import annotations

import asyncio
import unicodedata

import httpx
import pytest
import redis

from resolvers.ids import media_global_id, parse_user_global_id, tweet_global_id
from settings import Settings
from tests.gql import (
    CREATE_TWEET,
    DELETE_TWEET,
    TIMELINE,
    TWEET,
    all_pages,
    gql,
    gql_error,
    sign_up,
    tweet,
)


def stored_tweet_keys(settings: Settings) -> list[bytes]:
    client = redis.Redis.from_url(settings.documents_redis_url)
    try:
        return client.keys("tweet:*") + client.keys("timeline:*") + client.keys("idem:*")
    finally:
        client.close()


async def timeline(client: httpx.AsyncClient, username: str, first: int = 100) -> list[str]:
    data = await gql(client, TIMELINE, {"u": username, "first": first})
    return [edge["node"]["text"] for edge in data["user"]["tweets"]["edges"]]


async def test_create_read_and_timeline(client: httpx.AsyncClient) -> None:
    token, _ = await sign_up(client, "alice")
    created = await tweet(client, token, "  Hello @Bob and @bob! #GraphQL #graphql #2024  ")
    assert created["text"] == "Hello @Bob and @bob! #GraphQL #graphql #2024"
    assert created["mentions"] == ["Bob"]
    assert created["hashtags"] == ["GraphQL"]
    assert created["author"] == {"username": "alice"}
    assert created["media"] == []
    fetched = (await gql(client, TWEET, {"id": created["id"]}))["tweet"]
    assert fetched == {
        "id": created["id"],
        "text": created["text"],
        "author": {"username": "alice"},
    }
    await tweet(client, token, "second")
    assert await timeline(client, "alice") == ["second", created["text"]]


async def test_timeline_pages_to_the_end_in_order(client: httpx.AsyncClient) -> None:
    token, _ = await sign_up(client, "alice")
    texts = [f"tweet {i}" for i in range(12)]
    for text in texts:
        await tweet(client, token, text)
    variables = {"u": "alice", "first": 5}
    nodes = await all_pages(client, TIMELINE, variables, lambda d: d["user"]["tweets"])
    seen = [node["text"] for node in nodes]
    assert seen == texts[::-1]


async def test_length_is_counted_after_nfc_as_twitter_counts(client: httpx.AsyncClient) -> None:
    token, _ = await sign_up(client, "alice")
    decomposed = unicodedata.normalize("NFD", "é") * 280  # 560 code points, 280 after NFC
    assert len((await tweet(client, token, decomposed))["text"]) == 280
    emoji = "🐦" * 140  # an emoji counts 2 (more rules: tests/test_tweet_text.py)
    assert (await tweet(client, token, emoji))["text"] == emoji


@pytest.mark.parametrize(
    ("text", "media", "key"),
    [
        ("", None, None),
        ("   \n\t ", None, None),
        ("x" * 281, None, None),
        ("bell \x07", None, None),
        ("ok", None, ""),
        ("ok", None, "k" * 101),
        ("ok", ["not-an-id"], None),
        ("ok", [tweet_global_id(1, 2)], None),  # a tweet id is not a media id
        ("ok", [media_global_id(1, i) for i in range(5)], None),
    ],
)
async def test_bad_tweets_are_refused_and_store_nothing(
    client: httpx.AsyncClient, settings: Settings, text: str, media: list | None, key: str | None
) -> None:
    token, _ = await sign_up(client, "alice")
    variables = {"text": text, "media": media, "key": key}
    code, _ = await gql_error(client, CREATE_TWEET, variables, token=token)
    assert code == "BAD_USER_INPUT"
    assert stored_tweet_keys(settings) == []


async def test_media_must_be_the_callers_and_exist(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    token, alice_id = await sign_up(client, "alice")
    _, bob_id = await sign_up(client, "bob")
    foreign = media_global_id(parse_user_global_id(bob_id), 99)  # a media id names its owner
    code, _ = await gql_error(client, CREATE_TWEET, {"text": "x", "media": [foreign]}, token=token)
    assert code == "FORBIDDEN"
    missing = media_global_id(parse_user_global_id(alice_id), 99)
    code, _ = await gql_error(client, CREATE_TWEET, {"text": "x", "media": [missing]}, token=token)
    assert code == "NOT_FOUND"
    assert stored_tweet_keys(settings) == []


async def test_create_needs_a_token(client: httpx.AsyncClient) -> None:
    code, _ = await gql_error(client, CREATE_TWEET, {"text": "hi"})
    assert code == "UNAUTHENTICATED"


async def test_idempotency_key_returns_the_first_tweet(client: httpx.AsyncClient) -> None:
    token, _ = await sign_up(client, "alice")
    first = await tweet(client, token, "once", key="client-uuid-1")
    again = await tweet(client, token, "once", key="client-uuid-1")
    assert again["id"] == first["id"]
    racing = await asyncio.gather(
        *(tweet(client, token, "racing", key="client-uuid-2") for _ in range(10))
    )
    assert len({r["id"] for r in racing}) == 1
    assert await timeline(client, "alice") == ["racing", "once"]


async def test_delete_is_for_the_author_and_final(client: httpx.AsyncClient, api_url: str) -> None:
    alice, _ = await sign_up(client, "alice")
    bob, _ = await sign_up(client, "bob")
    doomed = await tweet(client, alice, "doomed")
    kept = await tweet(client, alice, "kept")
    assert (await gql(client, TWEET, {"id": doomed["id"]}))["tweet"] is not None  # now cached
    code, _ = await gql_error(client, DELETE_TWEET, {"id": doomed["id"]}, token=bob)
    assert code == "FORBIDDEN"
    code, _ = await gql_error(client, DELETE_TWEET, {"id": doomed["id"]})
    assert code == "UNAUTHENTICATED"
    assert (await gql(client, DELETE_TWEET, {"id": doomed["id"]}, token=alice)) == {
        "deleteTweet": doomed["id"]
    }
    assert (await gql(client, TWEET, {"id": doomed["id"]}))["tweet"] is None
    assert await timeline(client, "alice") == ["kept"]
    # Deleting again is harmless for the author; for others the tweet is simply gone.
    await gql(client, DELETE_TWEET, {"id": doomed["id"]}, token=alice)
    code, _ = await gql_error(client, DELETE_TWEET, {"id": doomed["id"]}, token=bob)
    assert code == "NOT_FOUND"
    code, _ = await gql_error(client, DELETE_TWEET, {"id": "garbage"}, token=alice)
    assert code == "BAD_USER_INPUT"
    assert (await gql(client, TWEET, {"id": kept["id"]}))["tweet"]["text"] == "kept"


async def test_malformed_ids_and_cursors(client: httpx.AsyncClient) -> None:
    token, _ = await sign_up(client, "alice")
    await tweet(client, token, "x")
    for query, variables in [
        (TWEET, {"id": "bogus"}),
        (TWEET, {"id": media_global_id(1, 1)}),
        (TIMELINE, {"u": "alice", "first": 5, "after": "bogus"}),
        (TIMELINE, {"u": "alice", "first": 101}),
        (TIMELINE, {"u": "alice", "first": 0}),
    ]:
        code, _ = await gql_error(client, query, variables)
        assert code == "BAD_USER_INPUT", variables
    assert (await gql(client, TWEET, {"id": tweet_global_id(1, 1)}))["tweet"] is None
