"""Who may use a WebSocket, for how long, and how a refused or ended socket says why: every
operation authorized afresh, revocation reaching every API process, graphql-transport-ws only,
distinct close codes; and tokens of accounts that do not exist."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
import jwt
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from auth.tokens import TokenIssuer
from resolvers.ids import parse_user_global_id
from settings import Settings
from storage.accounts import token_version_key
from storage.presence import live_slots_key
from tests.gql import LOG_IN, PASSWORD, VIEWER, gql, gql_error, sign_up
from tests.servers import serve_api
from tests.test_subscriptions import SUBSCRIBE, wait_subscribed

TRANSPORT_WS = "graphql-transport-ws"
TIMELINE_SIZE = (
    "query($u: String!) { user(username: $u) { tweets(first: 10) { edges { cursor } } } }"
)


def ws_url(api_url: str) -> str:
    return api_url.replace("http://", "ws://") + "/graphql"


def init(token: str) -> str:
    return json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})


@asynccontextmanager
async def socket_of(api_url: str, token: str) -> AsyncIterator[ClientConnection]:
    """An acknowledged graphql-transport-ws socket."""
    async with connect(ws_url(api_url), subprotocols=[TRANSPORT_WS]) as socket:
        await socket.send(init(token))
        assert json.loads(await asyncio.wait_for(socket.recv(), 10)) == {"type": "connection_ack"}
        yield socket


async def answer(socket: ClientConnection) -> dict | tuple[int, str]:
    """The server's next message other than ping, pong or an operation's complete, or
    (code, reason) if it closes."""
    try:
        while True:
            message = json.loads(await asyncio.wait_for(socket.recv(), 10))
            if message["type"] not in {"ping", "pong", "complete"}:
                return message
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        return closed.rcvd.code, closed.rcvd.reason


async def run(socket: ClientConnection, op_id: str, query: str, variables: dict | None = None):
    """Send one operation; the server's answer to it (see `answer`)."""
    payload = {"query": query, "variables": variables or {}}
    await socket.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
    return await answer(socket)


async def test_each_operation_on_a_socket_is_authorized_afresh(settings: Settings) -> None:
    """An operation sent after the token was revoked (its broadcast never seen here) or expired
    is refused, the socket closes (4401) and nothing changes, although an earlier operation on
    the same socket was authorized."""
    short = replace(settings, token_ttl_seconds=4, token_recheck_seconds=3600)
    tweeting = 'mutation { createTweet(text: "refused") { id } }'
    with serve_api(short) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, ann_id = await sign_up(client, "ann")
            async with socket_of(url, token) as socket:
                assert (await run(socket, "1", VIEWER))["payload"]["data"]["viewer"]
                documents = aioredis.Redis.from_url(settings.documents_redis_url)
                try:  # what logOutEverywhere does, without the message to the API processes
                    await documents.incr(token_version_key(parse_user_global_id(ann_id)))
                finally:
                    await documents.aclose()
                revoked = await run(socket, "2", tweeting)
            assert revoked == (4401, "Unauthorized: token expired or revoked")

            logged_in = await gql(client, LOG_IN, {"username": "ann", "password": PASSWORD})
            token = logged_in["logIn"]["token"]
            async with socket_of(url, token) as socket:
                assert (await run(socket, "1", VIEWER))["payload"]["data"]["viewer"]
                expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
                while time.time() <= expires_at + 0.1:  # waiting for the clock, not for work
                    await asyncio.sleep(0.1)
                expired = await run(socket, "2", tweeting)
            assert expired == (4401, "Unauthorized: token expired or revoked")
            timeline = await gql(client, TIMELINE_SIZE, {"u": "ann"})
            assert timeline["user"]["tweets"]["edges"] == []


async def test_log_out_everywhere_closes_sockets_on_every_process(settings: Settings) -> None:
    """logOutEverywhere on one API process closes the user's sockets on both, idle or subscribed,
    with no operation sent and no periodic re-check due; other users' sockets stay."""
    quiet = replace(settings, token_recheck_seconds=3600)
    with serve_api(quiet) as one, serve_api(quiet) as two:
        async with httpx.AsyncClient(base_url=one, timeout=30) as client:
            ann, ann_id = await sign_up(client, "ann")
            bob, _ = await sign_up(client, "bob")
            logged_in = await gql(client, LOG_IN, {"username": "ann", "password": PASSWORD})
            async with (
                socket_of(one, ann) as idle,
                socket_of(two, ann) as live,
                socket_of(two, bob) as other,
            ):
                await live.send(
                    json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
                )
                await wait_subscribed(quiet, ann_id)
                assert (await run(other, "1", VIEWER))["type"] == "next"
                await gql(
                    client, "mutation { logOutEverywhere }", token=logged_in["logIn"]["token"]
                )
                for socket in (idle, live):
                    assert await answer(socket) == (4401, "Unauthorized: token expired or revoked")
                assert (await run(other, "2", VIEWER))["type"] == "next"


async def test_legacy_graphql_ws_is_refused_and_holds_no_slot(settings: Settings) -> None:
    capped = replace(settings, max_ws_connections_per_user=2)
    with serve_api(capped) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, user_id = await sign_up(client, "ann")
            for _ in range(3):  # more legacy sockets than the cap, each initialising twice
                async with connect(ws_url(url), subprotocols=["graphql-ws"]) as legacy:
                    with contextlib.suppress(ConnectionClosed):  # it may be closed already
                        for _ in range(2):
                            await legacy.send(init(token))
                    assert await answer(legacy) == (
                        4406,
                        "Subprotocol not acceptable: only graphql-transport-ws is served",
                    )
            feed_redis = aioredis.Redis.from_url(settings.feed_redis_url)
            try:
                assert await feed_redis.zcard(live_slots_key(parse_user_global_id(user_id))) == 0
            finally:
                await feed_redis.aclose()
            async with socket_of(url, token), socket_of(url, token):
                pass  # both slots were free


async def test_close_codes_tell_a_bad_token_from_the_connection_cap(settings: Settings) -> None:
    capped = replace(settings, max_ws_connections_per_user=1)
    with serve_api(capped) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, _ = await sign_up(client, "ann")

            async def refusal(token: str) -> dict | tuple[int, str]:
                async with connect(ws_url(url), subprotocols=[TRANSPORT_WS]) as socket:
                    await socket.send(init(token))
                    return await answer(socket)

            assert await refusal("not-a-token") == (4401, "Unauthorized: invalid or expired token")
            async with socket_of(url, token):
                assert await refusal(token) == (4429, "Too many connections")


async def test_a_token_of_no_account_is_unauthenticated(
    client: httpx.AsyncClient, api_url: str, settings: Settings
) -> None:
    """A validly signed token naming a user id that has no account authorizes nothing."""
    _, bob_id = await sign_up(client, "bob")
    ghost_id = parse_user_global_id(bob_id) + 1
    forged = TokenIssuer(settings.jwt_secret, 3600).issue(ghost_id, 0)
    operations = [
        ('mutation { createTweet(text: "boo") { id } }', {}),
        ("mutation($id: ID!) { follow(userId: $id) { id } }", {"id": bob_id}),
        ('mutation { createMediaUpload(contentType: "image/png", byteSize: 10) { id } }', {}),
        ("mutation { logOutEverywhere }", {}),
        (VIEWER, {}),
        ("{ feed(first: 5) { edges { cursor } } }", {}),
    ]
    for query, variables in operations:
        code, _ = await gql_error(client, query, variables, token=forged)
        assert code == "UNAUTHENTICATED", query
    documents = aioredis.Redis.from_url(settings.documents_redis_url)
    try:
        assert [key async for key in documents.scan_iter(match=f"*{ghost_id}*")] == []
    finally:
        await documents.aclose()
    async with connect(ws_url(api_url), subprotocols=[TRANSPORT_WS]) as socket:
        await socket.send(init(forged))
        assert await answer(socket) == (4401, "Unauthorized: invalid or expired token")


async def test_a_socket_the_server_closes_mid_subscribe_frees_its_slot(settings: Settings) -> None:
    """A protocol violation right after a subscribe (here a duplicate operation id: 4409) closes
    the socket from the server's side; the subscription ends and the connection slot is freed,
    however often it happens (the attack pass leaked a slot in about one try in three)."""
    capped = replace(settings, max_ws_connections_per_user=2)
    subscribe = json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
    with serve_api(capped) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, user_id = await sign_up(client, "ann")
            slots = live_slots_key(parse_user_global_id(user_id))
            feed_redis = aioredis.Redis.from_url(settings.feed_redis_url)
            try:
                for _ in range(12):
                    async with socket_of(url, token) as socket:
                        with contextlib.suppress(ConnectionClosed):
                            await socket.send(subscribe)
                            await socket.send(subscribe)
                        assert await answer(socket) == (4409, "Subscriber for 1 already exists")
                    # The slot is released after the close frame left: wait for it (a leak
                    # times out) before the next socket asks for one.
                    async with asyncio.timeout(10):
                        while await feed_redis.zcard(slots):
                            await asyncio.sleep(0.05)
            finally:
                await feed_redis.aclose()
            async with socket_of(url, token), socket_of(url, token):
                pass  # both slots are free


@pytest.mark.parametrize(
    "message",
    [
        {"id": "2", "type": "subscribe", "payload": "x"},
        {"id": "2", "type": "subscribe", "payload": {"query": 5}},
        {"id": 2, "type": "subscribe", "payload": {"query": "{ __typename }"}},
        {"id": "2", "type": "subscribe", "payload": {"query": "{ __typename }", "variables": 1}},
    ],
)
async def test_a_malformed_subscribe_closes_with_4400(
    api_url: str, client: httpx.AsyncClient, message: dict
) -> None:
    token, _ = await sign_up(client, "ann")
    async with socket_of(api_url, token) as socket:
        await socket.send(json.dumps(message))
        assert await answer(socket) == (4400, "Invalid subscribe message")


async def test_an_unknown_operation_name_is_a_coded_client_error(
    api_url: str, client: httpx.AsyncClient
) -> None:
    token, _ = await sign_up(client, "ann")
    async with socket_of(api_url, token) as socket:
        payload = {"query": "query A { __typename }", "operationName": "X"}
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        reply = await answer(socket)
        assert isinstance(reply, dict) and reply["type"] == "error", reply
        assert [e["extensions"]["code"] for e in reply["payload"]] == ["BAD_REQUEST"]
