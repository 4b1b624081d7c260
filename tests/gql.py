"""Talking GraphQL over HTTP the way a client does: one helper that fails on errors, one that
expects exactly one error and returns its code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx


async def post(
    client: httpx.AsyncClient, query: str, variables: dict | None = None, token: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict | None = None, token: str | None = None
) -> dict[str, Any]:
    body = await post(client, query, variables, token)
    assert "errors" not in body, body["errors"]
    return body["data"]


async def gql_error(
    client: httpx.AsyncClient, query: str, variables: dict | None = None, token: str | None = None
) -> tuple[str, str]:
    """(extensions.code, message) of the single error the request must produce."""
    body = await post(client, query, variables, token)
    assert len(body.get("errors", [])) == 1, body
    error = body["errors"][0]
    return error["extensions"]["code"], error["message"]


SIGN_UP = """
mutation($username: String!, $password: String!, $displayName: String!) {
  signUp(username: $username, password: $password, displayName: $displayName) {
    token
    user { id username displayName followersCount followingCount }
  }
}
"""

LOG_IN = """
mutation($username: String!, $password: String!) {
  logIn(username: $username, password: $password) { token user { id username } }
}
"""

VIEWER = "{ viewer { id username displayName } }"

PASSWORD = "correct horse battery"


async def sign_up(client: httpx.AsyncClient, username: str) -> tuple[str, str]:
    """Create an account; returns (token, global user id)."""
    data = await gql(
        client,
        SIGN_UP,
        {"username": username, "password": PASSWORD, "displayName": username.title()},
    )
    return data["signUp"]["token"], data["signUp"]["user"]["id"]


CREATE_TWEET = """
mutation($text: String!, $media: [ID!], $key: String) {
  createTweet(text: $text, mediaIds: $media, idempotencyKey: $key) {
    id text createdAt mentions hashtags
    author { username }
    media { url width height contentType }
  }
}
"""

DELETE_TWEET = "mutation($id: ID!) { deleteTweet(id: $id) }"

TWEET = "query($id: ID!) { tweet(id: $id) { id text author { username } } }"

TIMELINE = """
query($u: String!, $first: Int!, $after: String) {
  user(username: $u) {
    tweets(first: $first, after: $after) {
      edges { cursor node { id text } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""

CREATE_MEDIA_UPLOAD = """
mutation($type: String!, $size: Int!) {
  createMediaUpload(contentType: $type, byteSize: $size) { id uploadUrl expiresInSeconds }
}
"""


async def tweet(client: httpx.AsyncClient, token: str, text: str, **variables: object) -> dict:
    data = await gql(client, CREATE_TWEET, {"text": text, **variables}, token=token)
    return data["createTweet"]


FEED = """
query($first: Int!, $after: String) {
  feed(first: $first, after: $after) {
    edges { cursor node { id text author { username } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

FOLLOW = "mutation($id: ID!) { follow(userId: $id) { id } }"
UNFOLLOW = "mutation($id: ID!) { unfollow(userId: $id) { id } }"


async def all_pages(
    client: httpx.AsyncClient,
    query: str,
    variables: dict,
    connection: Callable[[dict], dict],
    token: str | None = None,
) -> list[dict]:
    """Every node of a connection, following `after` cursors until hasNextPage is false.
    `connection` picks the connection out of the response data."""
    nodes: list[dict] = []
    after = None
    while True:
        page = connection(await gql(client, query, {**variables, "after": after}, token=token))
        nodes += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


async def read_feed(client: httpx.AsyncClient, token: str, first: int = 100) -> list[str]:
    """Every text in the viewer's feed, newest first, paging with `first` until the end."""
    nodes = await all_pages(client, FEED, {"first": first}, lambda d: d["feed"], token)
    return [node["text"] for node in nodes]


# Conversations, quotes and retweets (issue 12).

SETTLE_SECONDS = 10.0

REPLY = """
mutation($text: String!, $parent: ID, $quoted: ID) {
  createTweet(text: $text, inReplyTo: $parent, quoteOf: $quoted) { id text }
}
"""

RETWEET = "mutation($id: ID!) { retweet(tweetId: $id) { id text author { username } } }"
UNDO_RETWEET = "mutation($id: ID!) { undoRetweet(tweetId: $id) }"

FEED_ENTRIES = """
query($first: Int!, $after: String) {
  feed(first: $first, after: $after) {
    edges { cursor retweetedBy { username } node { id text author { username } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def reply(
    client: httpx.AsyncClient,
    token: str,
    text: str,
    parent: str | None = None,
    quoted: str | None = None,
) -> dict:
    """Post a reply to `parent` and/or a quote of `quoted` (global ids)."""
    variables = {"text": text, "parent": parent, "quoted": quoted}
    return (await gql(client, REPLY, variables, token=token))["createTweet"]


async def feed_entries(client: httpx.AsyncClient, token: str) -> list[tuple[str, str | None]]:
    """Every entry of the viewer's feed, newest first, as (text, retweeter or None)."""
    entries: list[tuple[str, str | None]] = []
    after = None
    while True:
        page = (await gql(client, FEED_ENTRIES, {"first": 7, "after": after}, token=token))["feed"]
        for edge in page["edges"]:
            by = edge["retweetedBy"]
            entries.append((edge["node"]["text"], None if by is None else by["username"]))
        if not page["pageInfo"]["hasNextPage"]:
            return entries
        after = page["pageInfo"]["endCursor"]


async def feed_settles(client: httpx.AsyncClient, token: str, wanted: list) -> None:
    """Wait until `feed_entries` is `wanted` (what a celebrity posts reaches reads within the
    celebrity cache's refresh): poll for up to SETTLE_SECONDS, failing with the last answer."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while (found := await feed_entries(client, token)) != wanted:
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)
