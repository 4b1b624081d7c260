"""Replies, threads and quotes end to end (the real app, a real worker, Redis and FalkorDB): the
replies of a tweet page oldest first, a deleted parent shows as deleted, the home-feed rule for
replies holds on the fan-out, rebuild, celebrity-merge and live paths, quotes embed one level,
and the counts move exactly once."""

from __future__ import annotations

from dataclasses import replace

import httpx

from devstack.servers import ManagedProcess
from resolvers.ids import parse_tweet_global_id, parse_user_global_id, tweet_global_id
from settings import Settings
from storage.feeds import FeedCache, feed_key
from storage.redis_clients import DocumentsRedis
from storage.tweet_counts import TweetCounters, TweetCounts
from tests.gql import (
    DELETE_TWEET,
    TIMELINE,
    feed_entries,
    feed_settles,
    gql,
    gql_error,
    reply,
    tweet,
)
from tests.servers import run_worker, serve_api
from tests.test_feed import idle, users
from tests.test_retweets import follow
from tests.test_subscriptions import next_update, subscribed, wait_subscribed

THREAD = """
query($id: ID!, $first: Int!, $after: String) {
  tweet(id: $id) {
    id text
    inReplyTo { id deleted tweet { id text } }
    conversation { id deleted }
    replies(first: $first, after: $after) {
      edges { cursor node { text inReplyTo { id } conversation { id } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

QUOTED = """
query($id: ID!) {
  tweet(id: $id) {
    text
    quoteOf {
      id deleted
      tweet { text author { username } quoteOf { id deleted tweet { text } } }
    }
  }
}
"""


async def counts_of(counters: TweetCounters, tweet_id: str) -> TweetCounts:
    [counts] = await counters.read([parse_tweet_global_id(tweet_id)])
    return counts


async def thread(client: httpx.AsyncClient, tweet_id: str, first: int, after=None) -> dict:
    variables = {"id": tweet_id, "first": first, "after": after}
    return (await gql(client, THREAD, variables))["tweet"]


async def test_replies_page_oldest_first_within_a_conversation(
    client: httpx.AsyncClient, counters: TweetCounters
) -> None:
    u = await users(client, "ann", "bob", "cat")
    root = await tweet(client, u["ann"][0], "root")
    texts = []
    for i, name in enumerate(["bob", "cat", "bob", "ann", "cat"]):
        texts.append(f"{name} says {i}")
        await reply(client, u[name][0], texts[-1], parent=root["id"])
    seen, after = [], None
    while True:
        page = (await thread(client, root["id"], 2, after))["replies"]
        seen += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert [n["text"] for n in seen] == texts  # oldest first
    assert {n["inReplyTo"]["id"] for n in seen} == {root["id"]}
    assert {n["conversation"]["id"] for n in seen} == {root["id"]}
    # A reply to a reply stays in the root's conversation.
    nested_parent = (await gql(client, TIMELINE, {"u": "bob", "first": 5}))["user"]["tweets"]
    bob_first = nested_parent["edges"][-1]["node"]["id"]
    deep = await reply(client, u["cat"][0], "deeper", parent=bob_first)
    found = await thread(client, deep["id"], 5)
    assert found["inReplyTo"]["tweet"] == {"id": bob_first, "text": "bob says 0"}
    assert found["conversation"] == {"id": root["id"], "deleted": False}
    assert (await thread(client, root["id"], 5))["conversation"]["id"] == root["id"]
    assert (await counts_of(counters, root["id"])).replies == 5
    assert (await counts_of(counters, bob_first)).replies == 1
    code, _ = await gql_error(client, THREAD, {"id": root["id"], "first": 101})
    assert code == "BAD_USER_INPUT"
    code, _ = await gql_error(client, THREAD, {"id": root["id"], "first": 2, "after": "x"})
    assert code == "BAD_USER_INPUT"


async def test_a_reply_to_a_deleted_tweet_shows_its_parent_as_deleted(
    client: httpx.AsyncClient, counters: TweetCounters, app_documents: DocumentsRedis
) -> None:
    u = await users(client, "ann", "bob")
    parent = await tweet(client, u["ann"][0], "will vanish")
    answer = await reply(client, u["bob"][0], "an answer", parent=parent["id"])
    other = await reply(client, u["bob"][0], "another", parent=parent["id"])
    await gql(client, DELETE_TWEET, {"id": parent["id"]}, token=u["ann"][0])
    found = await thread(client, answer["id"], 5)
    assert found["text"] == "an answer"
    assert found["inReplyTo"] == {"id": parent["id"], "deleted": True, "tweet": None}
    assert found["conversation"] == {"id": parent["id"], "deleted": True}
    # Deleting a reply takes it off its parent's list and count, once.
    for _ in range(2):
        await gql(client, DELETE_TWEET, {"id": other["id"]}, token=u["bob"][0])
    assert (await counts_of(counters, parent["id"])).replies == 1
    # Replying to a deleted, unknown or malformed tweet: refused, nothing written.
    keys_before = await app_documents.dbsize()
    bob = u["bob"][0]
    unknown = tweet_global_id(parse_user_global_id(u["ann"][1]), 777)
    for variables, expected in [
        ({"parent": parent["id"]}, "NOT_FOUND"),
        ({"parent": unknown}, "NOT_FOUND"),
        ({"quoted": parent["id"]}, "NOT_FOUND"),
        ({"parent": "nonsense"}, "BAD_USER_INPUT"),
        ({"quoted": u["ann"][1]}, "BAD_USER_INPUT"),
    ]:
        code, _ = await gql_error(
            client,
            "mutation($parent: ID, $quoted: ID) "
            '{ createTweet(text: "x", inReplyTo: $parent, quoteOf: $quoted) { id } }',
            variables,
            token=bob,
        )
        assert code == expected, variables
    assert await app_documents.dbsize() == keys_before
    timeline = await gql(client, TIMELINE, {"u": "bob", "first": 5})
    assert [e["node"]["text"] for e in timeline["user"]["tweets"]["edges"]] == ["an answer"]


async def test_quotes_embed_one_level_and_show_a_deleted_quote_as_such(
    client: httpx.AsyncClient, counters: TweetCounters, settings: Settings, worker: ManagedProcess
) -> None:
    u = await users(client, "ann", "bob", "cat", "dee")
    await follow(client, u, "dee", "cat")
    assert await feed_entries(client, u["dee"][0]) == []
    first = await tweet(client, u["ann"][0], "the first word")
    second = await reply(client, u["bob"][0], "bob quotes", quoted=first["id"])
    third = await reply(client, u["cat"][0], "cat quotes bob", quoted=second["id"])
    found = (await gql(client, QUOTED, {"id": third["id"]}))["tweet"]
    assert found["quoteOf"]["tweet"]["text"] == "bob quotes"
    assert found["quoteOf"]["tweet"]["author"] == {"username": "bob"}
    # One level only: the quoted tweet names what it quotes, without embedding it.
    assert found["quoteOf"]["tweet"]["quoteOf"] == {
        "id": first["id"],
        "deleted": False,
        "tweet": None,
    }
    assert (await counts_of(counters, first["id"])).quotes == 1
    assert (await counts_of(counters, second["id"])).quotes == 1
    await idle(settings)
    assert await feed_entries(client, u["dee"][0]) == [("cat quotes bob", None)]  # a plain tweet
    await gql(client, DELETE_TWEET, {"id": second["id"]}, token=u["bob"][0])
    found = (await gql(client, QUOTED, {"id": third["id"]}))["tweet"]
    assert found["quoteOf"] == {"id": second["id"], "deleted": True, "tweet": None}
    assert (await counts_of(counters, first["id"])).quotes == 0
    # A quote-reply (both at once) is allowed, as on Twitter's API.
    both = await reply(client, u["cat"][0], "both", parent=first["id"], quoted=first["id"])
    found = await thread(client, both["id"], 1)
    assert found["inReplyTo"]["tweet"]["id"] == first["id"]
    assert (await counts_of(counters, first["id"])) == TweetCounts(replies=1, quotes=1)


async def test_a_reply_enters_the_feeds_of_those_who_follow_both(
    client: httpx.AsyncClient,
    api_url: str,
    settings: Settings,
    feeds: FeedCache,
    worker: ManagedProcess,
) -> None:
    u = await users(client, "bob", "cat", "both", "only", "neither")
    await follow(client, u, "both", "bob", "cat")
    await follow(client, u, "only", "bob")  # follows the replier, not the person replied to
    await follow(client, u, "cat", "bob")  # the person replied to
    for name in u:
        assert await feed_entries(client, u[name][0]) == []  # cached: fan-out pushes
    parent = await tweet(client, u["cat"][0], "a question")
    await idle(settings)
    async with subscribed(api_url, u["only"][0]) as socket:
        await wait_subscribed(settings, u["only"][1])
        await reply(client, u["bob"][0], "an answer", parent=parent["id"])
        await reply(client, u["bob"][0], "and more", parent=parent["id"])
        own_thread = await tweet(client, u["bob"][0], "a thread")
        await reply(client, u["bob"][0], "thread 2", parent=own_thread["id"])
        # The live viewer who follows only the replier gets the thread, not the replies (in
        # either order: two fan-out jobs may finish out of order; the feed's order is checked
        # below).
        live = {(await next_update(socket))["tweet"]["text"] for _ in range(2)}
        assert live == {"a thread", "thread 2"}
    await idle(settings)
    expected = {
        "both": ["thread 2", "a thread", "and more", "an answer", "a question"],
        "cat": ["thread 2", "a thread", "and more", "an answer", "a question"],
        "bob": ["thread 2", "a thread", "and more", "an answer"],
        "only": ["thread 2", "a thread"],
        "neither": [],
    }

    async def texts(name: str) -> list[str]:
        return [text for text, _ in await feed_entries(client, u[name][0])]

    for name, wanted in expected.items():
        assert await texts(name) == wanted, name
    only = parse_user_global_id(u["only"][1])
    assert len(await feeds.members(only)) == 2  # the fan-out never pushed the replies
    # The rebuild path (feeds evicted) applies the same rule.
    for name in u:
        await feeds.client.delete(feed_key(parse_user_global_id(u[name][1])))
    for name, wanted in expected.items():
        assert await texts(name) == wanted, name
    assert len(await feeds.members(only)) == 2


async def test_a_celebrity_reply_is_merged_only_for_those_who_follow_both(
    settings: Settings, tmp_path
) -> None:
    low = replace(settings, celebrity_followers=2, celebrity_refresh_seconds=0.2)
    with serve_api(low) as url, run_worker(low, tmp_path / "worker.log"):
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            u = await users(client, "star", "cat", "both", "only", "fan3")
            await follow(client, u, "both", "star", "cat")
            await follow(client, u, "only", "star")
            await follow(client, u, "fan3", "star")
            await tweet(client, u["star"][0], "flips the flag")  # 3 followers > 2
            parent = await tweet(client, u["cat"][0], "hello star")
            await idle(low)
            await reply(client, u["star"][0], "hello cat", parent=parent["id"])
            await idle(low)

            both = [("hello cat", None), ("hello star", None), ("flips the flag", None)]
            await feed_settles(client, u["both"][0], both)
            assert await feed_entries(client, u["only"][0]) == [("flips the flag", None)]
