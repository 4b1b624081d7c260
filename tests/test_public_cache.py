"""Cache-Control on GraphQL responses (web/cache_policy.py), over real HTTP: an anonymous GET of
a query that succeeded may be shared for PUBLIC_CACHE_SECONDS; everything else, and above all
anything a token was sent with, is `no-store`; all of it varies on Authorization and Accept."""

from __future__ import annotations

import json
from dataclasses import replace

import httpx
import pytest

from settings import Settings
from tests.gql import FEED, TIMELINE, VIEWER, sign_up, tweet
from tests.servers import serve_api

PUBLIC_QUERY = '{ user(username: "ann") { username followersCount viewerIsFollowing } }'


def assert_vary(response: httpx.Response) -> None:
    named = {name.strip().lower() for name in response.headers["vary"].split(",")}
    assert {"authorization", "accept"} <= named, response.headers["vary"]


def assert_private(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store", response.headers
    assert_vary(response)


async def test_anonymous_get_of_a_query_is_public(client: httpx.AsyncClient) -> None:
    await sign_up(client, "ann")
    response = await client.get("/graphql", params={"query": PUBLIC_QUERY})
    assert response.json()["data"]["user"]["viewerIsFollowing"] is False
    assert response.headers["cache-control"] == "public, max-age=5"
    assert_vary(response)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (PUBLIC_QUERY, {}),
        (TIMELINE, {"u": "ann", "first": 5}),
        (VIEWER, {}),
        (FEED, {"first": 5}),
    ],
)
async def test_a_request_with_a_token_is_never_public(
    client: httpx.AsyncClient, query: str, variables: dict
) -> None:
    """Whatever it asks, a request carrying Authorization (valid or not) is not shared."""
    token, _ = await sign_up(client, "ann")
    await tweet(client, token, "hello")
    params = {"query": query, "variables": json.dumps(variables)}
    for authorization in (f"Bearer {token}", "Bearer not-a-token", "Basic abc"):
        response = await client.get(
            "/graphql", params=params, headers={"Authorization": authorization}
        )
        assert response.status_code == 200
        assert_private(response)
    signed_in = await client.get(
        "/graphql", params=params, headers={"Authorization": f"Bearer {token}"}
    )
    assert "errors" not in signed_in.json()  # it succeeded, and is still private


async def test_everything_else_is_no_store(client: httpx.AsyncClient) -> None:
    await sign_up(client, "ann")
    responses = {
        "POST": await client.post("/graphql", json={"query": PUBLIC_QUERY}),
        "field error": await client.get("/graphql", params={"query": VIEWER}),
        "invalid": await client.get("/graphql", params={"query": "{ nonsense }"}),
        "subscription": await client.get(
            "/graphql", params={"query": "subscription { feedUpdates { __typename } }"}
        ),
        "mutation over GET": await client.get(
            "/graphql", params={"query": "mutation { logOutEverywhere }"}
        ),
        "GraphiQL": await client.get("/graphql", headers={"Accept": "text/html"}),
        "too large": await client.post(
            "/graphql",
            content=b"{" + b" " * 200_000 + b"}",
            headers={"Content-Type": "application/json"},
        ),
        "not acceptable": await client.get(
            "/graphql", params={"query": PUBLIC_QUERY}, headers={"Accept": "text/plain"}
        ),
    }
    for what, response in responses.items():
        assert response.headers["cache-control"] == "no-store", what
        assert_vary(response)
    assert responses["subscription"].status_code == 400
    assert "WebSocket" in responses["subscription"].json()["errors"][0]["message"]
    assert responses["too large"].status_code == 413


async def test_public_cache_seconds_is_a_setting(settings: Settings) -> None:
    for seconds, expected in ((0, "no-store"), (30, "public, max-age=30")):
        with serve_api(replace(settings, public_cache_seconds=seconds)) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                response = await client.get("/graphql", params={"query": "{ __typename }"})
                assert response.headers["cache-control"] == expected
