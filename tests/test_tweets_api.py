"""Tweets over GraphQL/HTTP against the real app: create, read, timelines, delete, bad input."""

from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import replace

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
    post,
    sign_up,
    tweet,
)
from tests.images import png
from tests.servers import serve_api
from tests.test_media import upload


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


KEYED_TWEET = """
mutation($text: String!, $media: [ID!], $key: String, $parent: ID, $quoted: ID) {
  createTweet(
    text: $text, mediaIds: $media, idempotencyKey: $key, inReplyTo: $parent, quoteOf: $quoted
  ) { id text }
}
"""


def refused_as_reused(body: dict) -> bool:
    """Whether a createTweet answer is the refusal of a key used for a different tweet."""
    [error] = body.get("errors") or [{}]
    return (
        error.get("extensions", {}) == {"code": "BAD_USER_INPUT", "field": "idempotencyKey"}
        and "different tweet" in error["message"]
    )


async def test_idempotency_key_reused_for_a_different_tweet_is_refused(
    client: httpx.AsyncClient,
) -> None:
    """Stripe's rule: the same key with the same arguments is the same request (the first
    tweet back); with different ones it is a client bug, refused with a coded error that
    changes nothing (the media offered stays free to attach)."""
    token, _ = await sign_up(client, "alice")
    other = await tweet(client, token, "other")
    first = await tweet(client, token, "café", key="k1")
    decomposed = "  " + unicodedata.normalize("NFD", "café") + "\n"  # stored as "café"
    assert (await tweet(client, token, decomposed, key="k1"))["id"] == first["id"]
    photo = await upload(client, token, png(), "image/png")
    for different in (
        {"text": "two"},
        {"text": "café", "parent": other["id"]},
        {"text": "café", "quoted": other["id"]},
        {"text": "café", "media": [photo]},
    ):
        body = await post(client, KEYED_TWEET, {"key": "k1", **different}, token)
        assert refused_as_reused(body), (different, body)
    with_photo = await gql(
        client, KEYED_TWEET, {"text": "pic", "key": "k2", "media": [photo]}, token
    )
    again = {"text": "pic", "key": "k2", "media": [photo]}
    assert (await gql(client, KEYED_TWEET, again, token))["createTweet"] == with_photo[
        "createTweet"
    ]
    assert refused_as_reused(await post(client, KEYED_TWEET, {"text": "pic", "key": "k2"}, token))
    assert await timeline(client, "alice") == ["pic", "café", "other"]


async def test_concurrent_repeats_with_different_content(client: httpx.AsyncClient) -> None:
    """Two requests race with one key for different tweets, each with an image still to be
    verified (which keeps both past the first look for the key, so the store decides): one
    tweet exists, and the loser is refused instead of being handed the winner's tweet."""
    token, _ = await sign_up(client, "alice")
    for n in range(3):
        photos = [await upload(client, token, png(), "image/png") for _ in range(2)]
        requests = [{"text": f"{word} {n}", "key": f"race {n}"} for word in ("one", "two")]
        bodies = await asyncio.gather(
            *(
                post(client, KEYED_TWEET, {**request, "media": [photo]}, token)
                for request, photo in zip(requests, photos, strict=True)
            )
        )
        won = [body for body in bodies if not body.get("errors")]
        lost = [body for body in bodies if body.get("errors")]
        assert len(won) == 1 and len(lost) == 1 and refused_as_reused(lost[0]), bodies
        assert (await timeline(client, "alice"))[0] == won[0]["data"]["createTweet"]["text"]
    assert len(await timeline(client, "alice")) == 3


async def test_a_refused_repeat_costs_no_rate(settings: Settings) -> None:
    with serve_api(replace(settings, rate_tweets="2/60")) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, _ = await sign_up(client, "alice")
            await tweet(client, token, "one", key="k")
            for n in range(3):
                body = await post(client, KEYED_TWEET, {"text": f"not one {n}", "key": "k"}, token)
                assert refused_as_reused(body), body
            await tweet(client, token, "two")  # the second of two allowed


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
