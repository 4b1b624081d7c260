"""Text that is not Unicode (a lone UTF-16 surrogate, which JSON can spell) in any argument is a
coded client error that changes nothing, over HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import redis
from websockets.asyncio.client import connect

from settings import Settings
from tests.gql import CREATE_TWEET, LOG_IN, PASSWORD, SIGN_UP, VIEWER, gql, sign_up

LONE = "\ud800"
USER = "query($u: String!) { user(username: $u) { id } }"


async def post_raw(
    client: httpx.AsyncClient, query: str, variables: dict, token: str | None = None
) -> dict:
    """POST with the body escaped as ASCII JSON: the only way to send a lone surrogate (a
    UTF-8 encoder refuses it)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps({"query": query, "variables": variables})
    response = await client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def stored_keys(settings: Settings) -> list[bytes]:
    client = redis.Redis.from_url(settings.documents_redis_url)
    try:
        return sorted(client.keys("tweet:*") + client.keys("username:*") + client.keys("rate:*"))
    finally:
        client.close()


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (CREATE_TWEET, {"text": f"hello {LONE}"}),
        (CREATE_TWEET, {"text": "hello", "key": f"k{LONE}"}),
        (CREATE_TWEET, {"text": "hello", "media": [LONE]}),
        (LOG_IN, {"username": f"alice{LONE}", "password": PASSWORD}),
        (LOG_IN, {"username": "alice", "password": LONE * 10}),
        (SIGN_UP, {"username": "bob", "password": PASSWORD, "displayName": f"Bob {LONE}"}),
        (USER, {"u": LONE}),
    ],
)
async def test_lone_surrogates_are_bad_user_input_and_change_nothing(
    client: httpx.AsyncClient, settings: Settings, query: str, variables: dict
) -> None:
    token, _ = await sign_up(client, "alice")
    before = stored_keys(settings)
    body = await post_raw(client, query, variables, token)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
    assert body["data"] is None
    assert stored_keys(settings) == before


async def test_lone_surrogate_over_websocket_is_an_error_not_a_dropped_socket(
    client: httpx.AsyncClient, api_url: str
) -> None:
    token, _ = await sign_up(client, "alice")
    url = api_url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as socket:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await socket.send(json.dumps(init))
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "connection_ack"
        bad = {"query": USER, "variables": {"u": LONE}}
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": bad}))
        answer = json.loads(await asyncio.wait_for(socket.recv(), 10))
        errors = answer["payload"] if answer["type"] == "error" else answer["payload"]["errors"]
        assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"], answer
        # The socket is still usable.
        await socket.send(
            json.dumps({"id": "2", "type": "subscribe", "payload": {"query": VIEWER}})
        )
        while (answer := json.loads(await asyncio.wait_for(socket.recv(), 10))).get("id") != "2":
            pass
        assert answer["payload"]["data"]["viewer"]["username"] == "alice"
    assert (await gql(client, VIEWER, token=token))["viewer"]["username"] == "alice"
