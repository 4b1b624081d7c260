"""Limits, rate limits, token revocation and production switches, against the real app."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from settings import DEVELOPMENT_JWT_SECRET, Settings, SettingsError
from tests.gql import (
    CREATE_TWEET,
    FOLLOW,
    LOG_IN,
    PASSWORD,
    SIGN_UP,
    VIEWER,
    gql,
    gql_error,
    post,
    sign_up,
)
from tests.servers import serve_api
from tests.test_subscriptions import next_update, subscribed

NEST = "followers(first: 1) {{ edges {{ node {{ {} }} }} }}"
DEEP = "{ viewer { " + NEST.format(NEST.format(NEST.format(NEST.format("id")))) + " } }"


def limited(settings: Settings, **overrides: object) -> Settings:
    return replace(settings, **overrides)


async def test_operation_limits(settings: Settings) -> None:
    tight = limited(settings, max_query_depth=6, max_aliases=3, max_query_tokens=200,
                    max_query_bytes=1500, max_body_bytes=3000)  # fmt: skip
    with serve_api(tight) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, _ = await sign_up(client, "ann")
            assert (await gql_error(client, DEEP, token=token))[0] == "GRAPHQL_VALIDATION_FAILED"
            aliases = "{ " + " ".join(f"a{i}: viewer {{ id }}" for i in range(4)) + " }"
            assert (await gql_error(client, aliases, token=token))[0] == "GRAPHQL_VALIDATION_FAILED"
            many_tokens = "{ viewer { " + "id " * 300 + "} }"
            code, _ = await gql_error(client, many_tokens, token=token)
            assert code == "GRAPHQL_VALIDATION_FAILED"
            long_text = "{ viewer { id } }" + " " * 1600
            code, message = await gql_error(client, long_text, token=token)
            assert code == "QUERY_TOO_LARGE" and "bytes" in message
            huge = await client.post("/graphql", json={"query": "{ viewer { id } }" + " " * 4000})
            assert huge.status_code == 413
            assert huge.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
            assert (await gql(client, VIEWER, token=token))["viewer"]["username"] == "ann"


async def test_rate_limits_answer_with_retry_after(settings: Settings) -> None:
    tight = limited(settings, rate_tweets="2/60", rate_follows="1/60", rate_logins="2/60",
                    rate_signups="3/60")  # fmt: skip
    with serve_api(tight) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            ann, _ = await sign_up(client, "ann")
            _, bob_id = await sign_up(client, "bob")
            _, cat_id = await sign_up(client, "cat")
            variables = {"username": "dan", "password": PASSWORD, "displayName": "Dan"}
            body = await post(client, SIGN_UP, variables)
            assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"  # 4th sign-up/IP
            for text in ("one", "two"):
                await gql(client, CREATE_TWEET, {"text": text}, token=ann)
            body = await post(client, CREATE_TWEET, {"text": "three"}, token=ann)
            error = body["errors"][0]
            assert error["extensions"]["code"] == "RATE_LIMITED"
            assert 0 < error["extensions"]["retryAfter"] <= 60
            await gql(client, FOLLOW, {"id": bob_id}, token=ann)
            assert (await gql_error(client, FOLLOW, {"id": cat_id}, token=ann))[0] == "RATE_LIMITED"
            wrong = {"username": "ann", "password": "wrong password"}
            for _ in range(2):
                assert (await gql_error(client, LOG_IN, wrong))[0] == "UNAUTHENTICATED"
            # Even the right password is refused now: no guessing past the limit.
            right = {"username": "ann", "password": PASSWORD}
            assert (await gql_error(client, LOG_IN, right))[0] == "RATE_LIMITED"


async def test_log_out_everywhere_revokes_tokens_and_closes_sockets(settings: Settings) -> None:
    quick = limited(settings, token_recheck_seconds=0.3)
    with serve_api(quick) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, _ = await sign_up(client, "ann")
            second = await gql(client, LOG_IN, {"username": "ann", "password": PASSWORD})
            other_token = second["logIn"]["token"]
            async with subscribed(url, token) as socket:
                assert await gql(client, "mutation { logOutEverywhere }", token=other_token)
                with pytest.raises(ConnectionClosed) as closed:
                    await next_update(socket)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
            for old in (token, other_token):
                assert (await gql_error(client, VIEWER, token=old))[0] == "UNAUTHENTICATED"
            fresh = await gql(client, LOG_IN, {"username": "ann", "password": PASSWORD})
            assert (await gql(client, VIEWER, token=fresh["logIn"]["token"]))["viewer"]


async def test_websocket_connections_per_user_are_capped(settings: Settings) -> None:
    capped = limited(settings, max_ws_connections_per_user=1)
    with serve_api(capped) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, _ = await sign_up(client, "ann")
            ws_url = url.replace("http://", "ws://") + "/graphql"
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}

            async def open_socket() -> dict | int:
                """The server's answer to connection_init: a message, or a close code."""
                async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as socket:
                    await socket.send(json.dumps(init))
                    try:
                        return json.loads(await asyncio.wait_for(socket.recv(), 10))
                    except ConnectionClosed as closed:
                        return closed.rcvd.code if closed.rcvd else -1

            async with subscribed(url, token):
                assert await open_socket() == 4429  # the one connection is in use
            async with asyncio.timeout(10):  # the first socket's slot is freed when it closes
                while (answer := await open_socket()) == 4429:
                    await asyncio.sleep(0.05)
            assert answer == {"type": "connection_ack"}


async def test_production_switches(settings: Settings) -> None:
    closed = limited(settings, graphiql_enabled=False, introspection_enabled=False,
                     cors_origins="https://app.example")  # fmt: skip
    with serve_api(closed) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            page = await client.get("/graphql", headers={"Accept": "text/html"})
            assert page.status_code == 404
            body = await post(client, "{ __schema { types { name } } }")
            assert body["data"] is None
            assert {e["extensions"]["code"] for e in body["errors"]} == {
                "GRAPHQL_VALIDATION_FAILED"
            }
            preflight = {"Access-Control-Request-Method": "POST"}
            allowed = await client.options(
                "/graphql", headers={**preflight, "Origin": "https://app.example"}
            )
            assert allowed.headers["access-control-allow-origin"] == "https://app.example"
            other = await client.options(
                "/graphql", headers={**preflight, "Origin": "https://evil.example"}
            )
            assert "access-control-allow-origin" not in other.headers
    with pytest.raises(SettingsError, match="JWT_SECRET"):
        Settings.from_env({"APP_ENV": "production"})
    assert Settings.from_env({"APP_ENV": "production", "JWT_SECRET": "x" * 40}).jwt_secret
    development = Settings.from_env({"APP_ENV": "development"})
    assert development.jwt_secret == DEVELOPMENT_JWT_SECRET


async def test_operations_beyond_the_socket_limit_get_a_coded_error(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        token, _ = await sign_up(client, "ann")
    async with subscribed(api_url, token) as socket:  # operation "1"
        payload = {"query": "subscription { feedUpdates { __typename } }"}
        for i in range(2, 6):  # four more: five in all, the limit
            await socket.send(json.dumps({"id": str(i), "type": "subscribe", "payload": payload}))
        await socket.send(json.dumps({"id": "6", "type": "subscribe", "payload": payload}))
        while (message := json.loads(await asyncio.wait_for(socket.recv(), 10)))["id"] != "6":
            pass
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert "5 operations" in message["payload"][0]["message"]
