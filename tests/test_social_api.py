"""Following over GraphQL/HTTP against the real app: follow, counts, lists, suggestions."""

from __future__ import annotations

import asyncio

import httpx

from resolvers.ids import user_global_id
from tests.gql import all_pages, gql, gql_error, sign_up

FOLLOW = "mutation($id: ID!) { follow(userId: $id) { id followersCount viewerIsFollowing } }"
UNFOLLOW = "mutation($id: ID!) { unfollow(userId: $id) { id followersCount viewerIsFollowing } }"
PROFILE = """
query($u: String!, $first: Int!, $after: String) {
  user(username: $u) {
    followersCount followingCount viewerIsFollowing
    followers(first: $first, after: $after) {
      edges { cursor node { username } }
      pageInfo { hasNextPage endCursor }
    }
    following(first: $first) { edges { node { username } } }
  }
}
"""
WHO_TO_FOLLOW = "query($n: Int!) { whoToFollow(first: $n) { user { username } mutualFollowers } }"


async def test_follow_and_unfollow_update_counts_lists_and_flags(
    client: httpx.AsyncClient,
) -> None:
    alice, _ = await sign_up(client, "alice")
    bob, bob_id = await sign_up(client, "bob")
    followed = (await gql(client, FOLLOW, {"id": bob_id}, token=alice))["follow"]
    assert followed == {"id": bob_id, "followersCount": 1, "viewerIsFollowing": True}
    again = (await gql(client, FOLLOW, {"id": bob_id}, token=alice))["follow"]
    assert again["followersCount"] == 1  # idempotent

    as_alice = (await gql(client, PROFILE, {"u": "bob", "first": 10}, token=alice))["user"]
    assert as_alice["followersCount"] == 1 and as_alice["viewerIsFollowing"] is True
    assert [e["node"]["username"] for e in as_alice["followers"]["edges"]] == ["alice"]
    anonymous = (await gql(client, PROFILE, {"u": "alice", "first": 10}))["user"]
    assert anonymous["followingCount"] == 1 and anonymous["viewerIsFollowing"] is False
    assert [e["node"]["username"] for e in anonymous["following"]["edges"]] == ["bob"]
    as_bob = (await gql(client, PROFILE, {"u": "alice", "first": 10}, token=bob))["user"]
    assert as_bob["viewerIsFollowing"] is False

    unfollowed = (await gql(client, UNFOLLOW, {"id": bob_id}, token=alice))["unfollow"]
    assert unfollowed == {"id": bob_id, "followersCount": 0, "viewerIsFollowing": False}
    assert (await gql(client, UNFOLLOW, {"id": bob_id}, token=alice))["unfollow"][
        "followersCount"
    ] == 0


async def test_follow_refuses_bad_requests_with_codes(client: httpx.AsyncClient) -> None:
    alice, alice_id = await sign_up(client, "alice")
    _, bob_id = await sign_up(client, "bob")
    cases = [
        (FOLLOW, {"id": bob_id}, None, "UNAUTHENTICATED"),
        (FOLLOW, {"id": alice_id}, alice, "BAD_USER_INPUT"),
        (UNFOLLOW, {"id": alice_id}, alice, "BAD_USER_INPUT"),
        (FOLLOW, {"id": user_global_id(12345)}, alice, "NOT_FOUND"),
        (UNFOLLOW, {"id": user_global_id(12345)}, alice, "NOT_FOUND"),
        (FOLLOW, {"id": "not-an-id"}, alice, "BAD_USER_INPUT"),
        (FOLLOW, {"id": "VHdlZXQ6MQ"}, alice, "BAD_USER_INPUT"),  # "Tweet:1": wrong type
        (FOLLOW, {"id": user_global_id(2**63 - 1) + "x"}, alice, "BAD_USER_INPUT"),
    ]
    for mutation, variables, token, expected in cases:
        code, _ = await gql_error(client, mutation, variables, token=token)
        assert code == expected, (variables, token)
    bob = (await gql(client, PROFILE, {"u": "bob", "first": 1}))["user"]
    assert bob["followersCount"] == 0


async def test_followers_paginate_to_the_end_without_repeats(client: httpx.AsyncClient) -> None:
    _, star_id = await sign_up(client, "star")
    names = [f"fan{i:02d}" for i in range(7)]
    for name in names:
        token, _ = await sign_up(client, name)
        await gql(client, FOLLOW, {"id": star_id}, token=token)
    variables = {"u": "star", "first": 3}
    nodes = await all_pages(client, PROFILE, variables, lambda d: d["user"]["followers"])
    assert [node["username"] for node in nodes] == names[::-1]  # newest follow first


async def test_page_size_and_cursor_are_validated(client: httpx.AsyncClient) -> None:
    await sign_up(client, "alice")
    for variables in [
        {"u": "alice", "first": 0},
        {"u": "alice", "first": 101},
        {"u": "alice", "first": -5},
        {"u": "alice", "first": 10, "after": "bogus"},
        {"u": "alice", "first": 10, "after": user_global_id(5)},  # an id is not a cursor
    ]:
        code, _ = await gql_error(client, PROFILE, variables)
        assert code == "BAD_USER_INPUT", variables


async def test_who_to_follow_ranks_by_how_many_followees_follow(client: httpx.AsyncClient) -> None:
    tokens: dict[str, str] = {}
    ids: dict[str, str] = {}
    for name in ["me", "f1", "f2", "f3", "popular", "niche", "known"]:
        tokens[name], ids[name] = await sign_up(client, name)
    edges = [
        ("me", "f1"), ("me", "f2"), ("me", "f3"), ("me", "known"),
        ("f1", "popular"), ("f2", "popular"), ("f3", "popular"),
        ("f1", "niche"), ("f2", "known"), ("f3", "me"),
    ]  # fmt: skip
    for follower, followee in edges:
        await gql(client, FOLLOW, {"id": ids[followee]}, token=tokens[follower])
    data = await gql(client, WHO_TO_FOLLOW, {"n": 10}, token=tokens["me"])
    assert data["whoToFollow"] == [
        {"user": {"username": "popular"}, "mutualFollowers": 3},
        {"user": {"username": "niche"}, "mutualFollowers": 1},
    ]
    code, _ = await gql_error(client, WHO_TO_FOLLOW, {"n": 101}, token=tokens["me"])
    assert code == "BAD_USER_INPUT"
    code, _ = await gql_error(client, WHO_TO_FOLLOW, {"n": 5})
    assert code == "UNAUTHENTICATED"


async def test_fifty_concurrent_follows_count_exactly(client: httpx.AsyncClient) -> None:
    _, star_id = await sign_up(client, "star")
    tokens = [(await sign_up(client, f"fan{i}"))[0] for i in range(50)]
    await asyncio.gather(*(gql(client, FOLLOW, {"id": star_id}, token=t) for t in tokens))
    star = (await gql(client, PROFILE, {"u": "star", "first": 100}))["user"]
    assert star["followersCount"] == 50
    assert len(star["followers"]["edges"]) == 50
