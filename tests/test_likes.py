"""Likes through the real API: idempotent like/unlike, exact counts under concurrency, a user's
likes paged newest first, the viewer's state (also after logOutEverywhere), and hostile input."""

from __future__ import annotations

import asyncio
import base64
import random
from dataclasses import replace

import httpx
import pytest

from resolvers.ids import tweet_global_id
from settings import Settings
from tests.gql import DELETE_TWEET, LOG_IN, PASSWORD, gql, gql_error, sign_up, tweet
from tests.servers import serve_api

LIKE = "mutation($id: ID!) { like(tweetId: $id) { id likeCount viewerHasLiked } }"
UNLIKE = "mutation($id: ID!) { unlike(tweetId: $id) { id likeCount viewerHasLiked } }"
ENGAGEMENT = """
query($id: ID!) {
  tweet(id: $id) {
    replyCount retweetCount quoteCount likeCount viewerHasLiked viewerHasRetweeted
  }
}
"""
LIKES = """
query($u: String!, $first: Int!, $after: String) {
  user(username: $u) {
    likes(first: $first, after: $after) {
      edges { cursor node { id text likeCount viewerHasLiked } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""


async def engagement(client: httpx.AsyncClient, tweet_id: str, token: str | None) -> dict:
    return (await gql(client, ENGAGEMENT, {"id": tweet_id}, token=token))["tweet"]


async def test_like_and_unlike_are_idempotent_and_the_state_is_the_viewers(
    client: httpx.AsyncClient,
) -> None:
    ann, _ = await sign_up(client, "ann")
    bob, _ = await sign_up(client, "bob")
    posted = await tweet(client, ann, "like me")
    for _ in range(2):
        liked = (await gql(client, LIKE, {"id": posted["id"]}, token=bob))["like"]
        assert liked == {"id": posted["id"], "likeCount": 1, "viewerHasLiked": True}
    assert await engagement(client, posted["id"], ann) == {
        "replyCount": 0,
        "retweetCount": 0,
        "quoteCount": 0,
        "likeCount": 1,
        "viewerHasLiked": False,  # ann did not like it; bob did
        "viewerHasRetweeted": False,
    }
    anonymous = await engagement(client, posted["id"], None)
    assert (anonymous["likeCount"], anonymous["viewerHasLiked"]) == (1, False)
    # Unliking what ann never liked changes nothing.
    unliked = (await gql(client, UNLIKE, {"id": posted["id"]}, token=ann))["unlike"]
    assert (unliked["likeCount"], unliked["viewerHasLiked"]) == (1, False)
    for _ in range(2):
        unliked = (await gql(client, UNLIKE, {"id": posted["id"]}, token=bob))["unlike"]
        assert (unliked["likeCount"], unliked["viewerHasLiked"]) == (0, False)


async def test_counts_are_exact_after_concurrent_interleaved_likes_and_unlikes(
    client: httpx.AsyncClient,
) -> None:
    author, _ = await sign_up(client, "author")
    posted = await tweet(client, author, "popular")
    tokens = [(await sign_up(client, f"fan{n}"))[0] for n in range(30)]
    rng = random.Random(7)
    # Each fan sends a shuffled burst of likes and unlikes, all fans at once, each ending
    # with a known final request; repeats and races of one user with itself included.
    finals = {token: rng.choice([LIKE, UNLIKE]) for token in tokens}

    async def fan(token: str) -> None:
        for _ in range(2):  # 30 users x 3 requests in flight: within the API's Redis pool (100)
            burst = [rng.choice([LIKE, UNLIKE]) for _ in range(3)]
            await asyncio.gather(
                *(gql(client, q, {"id": posted["id"]}, token=token) for q in burst)
            )
        await gql(client, finals[token], {"id": posted["id"]}, token=token)

    await asyncio.gather(*(fan(t) for t in tokens))
    expected = sum(1 for q in finals.values() if q == LIKE)
    assert (await engagement(client, posted["id"], None))["likeCount"] == expected
    for token, final in list(finals.items())[:5]:
        assert (await engagement(client, posted["id"], token))["viewerHasLiked"] == (final == LIKE)


async def test_a_users_likes_newest_first_deleted_skipped_pages_still_full(
    client: httpx.AsyncClient,
) -> None:
    ann, _ = await sign_up(client, "ann")
    bob, _ = await sign_up(client, "bob")
    posted = [await tweet(client, ann, f"t{n}") for n in range(9)]
    order = [3, 0, 8, 5, 1, 7, 2, 6, 4]  # bob likes them in this order
    for n in order:
        await gql(client, LIKE, {"id": posted[n]["id"]}, token=bob)
    for n in (5, 1, 2):  # ann deletes three of them
        await gql(client, DELETE_TWEET, {"id": posted[n]["id"]}, token=ann)
    expected = [f"t{n}" for n in reversed(order) if n not in (5, 1, 2)]
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        data = await gql(client, LIKES, {"u": "bob", "first": 2, "after": after})
        connection = data["user"]["likes"]
        texts = [edge["node"]["text"] for edge in connection["edges"]]
        seen += texts
        pages += 1
        if not connection["pageInfo"]["hasNextPage"]:
            break
        assert len(texts) == 2  # skipped deletions are replaced by older likes
        after = connection["pageInfo"]["endCursor"]
    assert seen == expected and pages == 3
    # A viewer sees their own state on the list (anonymous: false).
    mine = await gql(client, LIKES, {"u": "bob", "first": 1}, token=bob)
    assert mine["user"]["likes"]["edges"][0]["node"]["viewerHasLiked"] is True
    code, _ = await gql_error(client, LIKES, {"u": "bob", "first": 101})
    assert code == "BAD_USER_INPUT"
    code, _ = await gql_error(client, LIKES, {"u": "bob", "first": 2, "after": "bogus"})
    assert code == "BAD_USER_INPUT"


async def test_the_acting_user_comes_from_the_token_and_bad_ids_change_nothing(
    client: httpx.AsyncClient,
) -> None:
    ann, _ = await sign_up(client, "ann")
    posted = await tweet(client, ann, "mine")
    assert (await gql_error(client, LIKE, {"id": posted["id"]}))[0] == "UNAUTHENTICATED"
    code, _ = await gql_error(client, LIKE, {"id": posted["id"]}, token="not-a-token")
    assert code == "UNAUTHENTICATED"
    # The mutation takes no user argument: a user id cannot be passed in.
    code, _ = await gql_error(
        client, 'mutation($id: ID!) { like(tweetId: $id, userId: "x") { id } }', {"id": "x"}, ann
    )
    assert code == "GRAPHQL_VALIDATION_FAILED"
    user_id = base64.urlsafe_b64encode(b"User:1").decode().rstrip("=")
    author_id = int(base64.urlsafe_b64decode(posted["id"] + "==").decode().split(":")[1])
    bad = {
        "malformed": "!!!",
        "a user id": user_id,
        "an unknown tweet": tweet_global_id(author_id, 1),
        "an unknown author": tweet_global_id(999_999, 1),
        "a negative id": base64.urlsafe_b64encode(b"Tweet:1:-5").decode().rstrip("="),
    }
    expected_codes = {
        "malformed": "BAD_USER_INPUT",
        "a user id": "BAD_USER_INPUT",
        "an unknown tweet": "NOT_FOUND",
        "an unknown author": "NOT_FOUND",
        "a negative id": "BAD_USER_INPUT",
    }
    for name, tweet_id in bad.items():
        for mutation in (LIKE, UNLIKE):
            code, _ = await gql_error(client, mutation, {"id": tweet_id}, token=ann)
            assert code == expected_codes[name], name
    # A deleted tweet cannot be liked; nothing was recorded anywhere.
    gone = await tweet(client, ann, "gone")
    await gql(client, DELETE_TWEET, {"id": gone["id"]}, token=ann)
    assert (await gql_error(client, LIKE, {"id": gone["id"]}, token=ann))[0] == "NOT_FOUND"
    likes = await gql(client, LIKES, {"u": "ann", "first": 10})
    assert likes["user"]["likes"]["edges"] == []
    assert (await engagement(client, posted["id"], ann))["likeCount"] == 0


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return replace(settings, rate_likes="3/60")


async def test_likes_are_rate_limited_per_user(limited: Settings) -> None:
    with serve_api(limited) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            ann, _ = await sign_up(client, "ann")
            bob, _ = await sign_up(client, "bob")
            posted = await tweet(client, ann, "x")
            for mutation in (LIKE, UNLIKE, LIKE):
                await gql(client, mutation, {"id": posted["id"]}, token=bob)
            body = await client.post(
                "/graphql",
                json={"query": UNLIKE, "variables": {"id": posted["id"]}},
                headers={"Authorization": f"Bearer {bob}"},
            )
            error = body.json()["errors"][0]
            assert error["extensions"]["code"] == "RATE_LIMITED"
            assert 0 < error["extensions"]["retryAfter"] <= 60
            assert (await engagement(client, posted["id"], bob))["viewerHasLiked"] is True
            # Another user is not limited by bob's likes.
            await gql(client, LIKE, {"id": posted["id"]}, token=ann)


async def test_viewer_state_after_log_out_everywhere_and_log_in_again(
    client: httpx.AsyncClient,
) -> None:
    ann, _ = await sign_up(client, "ann")
    posted = await tweet(client, ann, "x")
    await gql(client, LIKE, {"id": posted["id"]}, token=ann)
    await gql(client, "mutation { logOutEverywhere }", token=ann)
    code, _ = await gql_error(client, LIKE, {"id": posted["id"]}, token=ann)
    assert code == "UNAUTHENTICATED"
    # The revoked token reads as anonymous on public fields: no viewer state.
    assert (await engagement(client, posted["id"], ann))["viewerHasLiked"] is False
    again = await gql(client, LOG_IN, {"username": "ann", "password": PASSWORD})
    fresh = again["logIn"]["token"]
    state = await engagement(client, posted["id"], fresh)
    assert (state["likeCount"], state["viewerHasLiked"]) == (1, True)
    unliked = (await gql(client, UNLIKE, {"id": posted["id"]}, token=fresh))["unlike"]
    assert (unliked["likeCount"], unliked["viewerHasLiked"]) == (0, False)
