"""The engagement fields over what both halves of engagement do: replies, quotes and retweets
move the counts a client reads on `Tweet` and push them to tweetUpdates; a retweet in a feed
carries the original's counts and the viewer's own state."""

from __future__ import annotations

import asyncio
import json

import httpx

from devstack.servers import ManagedProcess
from tests.gql import FOLLOW, RETWEET, UNDO_RETWEET, gql, reply, sign_up, tweet
from tests.test_likes import LIKE, engagement
from tests.test_tweet_updates import watching

FEED_COUNTS = """
query { feed(first: 10) { edges { retweetedBy { username }
  node { text likeCount retweetCount replyCount quoteCount viewerHasLiked viewerHasRetweeted } } } }
"""


async def test_replies_quotes_and_retweets_move_the_counts_clients_read(
    client: httpx.AsyncClient,
) -> None:
    alice, _ = await sign_up(client, "alice")
    bob, _ = await sign_up(client, "bob")
    original = (await tweet(client, alice, "the original"))["id"]
    assert await engagement(client, original, bob) == {
        "replyCount": 0, "retweetCount": 0, "quoteCount": 0, "likeCount": 0,
        "viewerHasLiked": False, "viewerHasRetweeted": False,
    }  # fmt: skip
    first_reply = await reply(client, bob, "a reply", parent=original)
    await reply(client, bob, "a quote", quoted=original)
    await reply(client, bob, "a quote-reply", parent=original, quoted=original)
    await gql(client, RETWEET, {"id": original}, token=bob)
    await gql(client, RETWEET, {"id": original}, token=bob)  # a repeat changes nothing
    await gql(client, LIKE, {"id": original}, token=bob)
    assert await engagement(client, original, bob) == {
        "replyCount": 2, "retweetCount": 1, "quoteCount": 2, "likeCount": 1,
        "viewerHasLiked": True, "viewerHasRetweeted": True,
    }  # fmt: skip
    assert (await engagement(client, original, alice))["viewerHasRetweeted"] is False
    await gql(client, UNDO_RETWEET, {"id": original}, token=bob)
    await gql(client, "mutation($id: ID!) { deleteTweet(id: $id) }", {"id": first_reply["id"]},
              token=bob)  # fmt: skip
    after = await engagement(client, original, bob)
    assert (after["replyCount"], after["retweetCount"], after["viewerHasRetweeted"]) == (
        1,
        0,
        False,
    )


async def test_a_retweet_in_a_feed_shows_the_originals_counts_and_the_viewers_state(
    client: httpx.AsyncClient, worker: ManagedProcess
) -> None:
    alice, _ = await sign_up(client, "alice")
    bob, bob_id = await sign_up(client, "bob")
    carol, _ = await sign_up(client, "carol")
    await gql(client, FOLLOW, {"id": bob_id}, token=carol)
    original = (await tweet(client, alice, "worth sharing"))["id"]
    await gql(client, LIKE, {"id": original}, token=carol)
    await gql(client, RETWEET, {"id": original}, token=bob)
    for _ in range(100):
        edges = (await gql(client, FEED_COUNTS, token=carol))["feed"]["edges"]
        if edges:
            break
        await asyncio.sleep(0.05)
    [edge] = edges
    assert edge["retweetedBy"] == {"username": "bob"}
    assert edge["node"] == {
        "text": "worth sharing", "likeCount": 1, "retweetCount": 1, "replyCount": 0,
        "quoteCount": 0, "viewerHasLiked": True, "viewerHasRetweeted": False,
    }  # fmt: skip


async def test_a_reply_reaches_tweet_updates(api_url: str, client: httpx.AsyncClient) -> None:
    alice, _ = await sign_up(client, "alice")
    original = (await tweet(client, alice, "watched"))["id"]
    async with watching(api_url, alice, [original]) as socket:
        counts: dict = {}
        while counts.get("replyCount") != 1:
            message = json.loads(await asyncio.wait_for(socket.recv(), 10))
            assert message["type"] == "next", message
            counts = message["payload"]["data"]["tweetUpdates"]
            if counts["replyCount"] == 0:  # the current counts came first: now reply
                await reply(client, alice, "answering myself", parent=original)
        assert counts["tweetId"] == original
