"""Issue 8, items 3, 4, 7 and 9 (nested JSON): message size, refused documents kept nowhere,
query cost, graph calls per operation, forwarded addresses, JSON nested too deeply."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from devstack.servers import LOOPBACK, free_port, start_redis
from schema.build import build_schema
from settings import Settings
from tests.gql import FOLLOW, PASSWORD, SIGN_UP, gql, gql_error, post, sign_up
from tests.servers import serve_api


def nested_followers(levels: int, first: int) -> str:
    """The issue's attack: `followers` inside `followers`, `levels` deep."""
    inner = "username"
    for _ in range(levels):
        inner = f"followers(first: {first}) {{ edges {{ node {{ {inner} }} }} }}"
    return f'{{ user(username: "ann") {{ {inner} }} }}'


async def open_socket(url: str, token: str) -> ClientConnection:
    socket = await connect(url.replace("http://", "ws://") + "/graphql",
                           subprotocols=["graphql-transport-ws"], max_size=None)  # fmt: skip
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
    await socket.send(json.dumps(init))
    assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "connection_ack"
    return socket


async def answer(socket: ClientConnection) -> dict | int:
    """The next message that is not a ping, or the close code if the server closed instead."""
    try:
        while (message := json.loads(await asyncio.wait_for(socket.recv(), 10)))["type"] in {
            "ping",
            "pong",
        }:
            pass
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else -1
    return message


def subscribe(query: str, padding: str = "") -> str:
    payload = {"query": query, "variables": {"padding": padding} if padding else {}}
    return json.dumps({"id": "1", "type": "subscribe", "payload": payload})


async def test_refused_documents_are_never_cached() -> None:
    """Only documents that parsed and validated are kept; an oversized text is refused before
    parsing. Repeating an accepted query is served from the cache."""
    schema = build_schema(max_query_depth=4, max_query_bytes=2000, max_query_cost_anonymous=50)
    accepted = "{ __typename }"
    refused = {
        "QUERY_TOO_LARGE": "{ __typename }" + " " * 3000,
        "QUERY_TOO_COMPLEX": nested_followers(2, 20),
        "GRAPHQL_VALIDATION_FAILED": nested_followers(4, 1),  # too deep
    }
    for _ in range(2):
        assert (await schema.execute(accepted)).data == {"__typename": "Query"}
        for code, query in refused.items():
            result = await schema.execute(query)
            assert result.data is None and result.errors
            assert {e.extensions["code"] for e in result.errors} >= {code}, result.errors
    assert schema.document_cache.queries() == [accepted]


async def test_accepted_documents_are_bounded_by_their_text() -> None:
    """Accepted texts near MAX_QUERY_BYTES (the attack pass grew a process by half a gigabyte
    with 1,000 of them) are not kept; small ones are, within the cache's text budget."""
    schema = build_schema(max_query_depth=4, max_query_bytes=20_000)
    cache = schema.document_cache
    for n in range(50):
        big = "{ __typename }\n#" + "x" * 17_000 + str(n)  # a comment: accepted, cost 0
        assert (await schema.execute(big)).data == {"__typename": "Query"}
    assert cache.queries() == []
    small = [f"query Q{n} {{ __typename }}" for n in range(100)]
    for query in small:
        await schema.execute(query)
    assert cache.queries() == small
    assert cache.text_chars == sum(map(len, small)) <= cache.max_text_chars


async def test_query_cost_limits_anonymous_and_signed_in_callers(settings: Settings) -> None:
    with serve_api(settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, _ = await sign_up(client, "ann")
            # The anonymous three-level fan-out is refused before anything runs.
            code, message = await gql_error(client, nested_followers(3, 20))
            assert code == "QUERY_TOO_COMPLEX" and "costs" in message
            two_levels = nested_followers(2, 30)  # 1 + 30 * (2 + 1 + 30 * 2) = 1891
            assert (await gql_error(client, two_levels))[0] == "QUERY_TOO_COMPLEX"
            data = await gql(client, two_levels, token=token)  # under MAX_QUERY_COST
            assert data["user"]["followers"]["edges"] == []
            body = await post(client, nested_followers(3, 20), token=token)
            assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
            # A variable `first` counts as MAX_PAGE_SIZE, whatever is sent: 1 + 100 * (3 + 10 * 2).
            variable = nested_followers(2, 10).replace("first: 10)", "first: $n)", 1)
            query = "query($n: Int!) " + variable
            code, _ = await gql_error(client, query, {"n": 1})
            assert code == "QUERY_TOO_COMPLEX"


@pytest.fixture
def own_graph_server(tmp_path: Path) -> Iterator[str]:
    """A FalkorDB server that only the API under test talks to, so its clients can be counted."""
    port = free_port()
    server = start_redis("graph", port, tmp_path / "graph", falkordb=True, appendonly=False)
    yield f"redis://{LOOPBACK}:{port}"
    server.stop()


async def test_one_operation_holds_at_most_its_graph_call_slots(
    settings: Settings, own_graph_server: str
) -> None:
    """Ten followers' follower lists are asked at once; the graph sees at most
    MAX_GRAPH_CALLS_PER_REQUEST connections from the API (its pool opens one per call in
    flight), so one operation cannot take the pool from everyone else."""
    capped = replace(settings, falkordb_url=own_graph_server, max_graph_calls_per_request=2)
    graph = redis.Redis.from_url(own_graph_server)
    with serve_api(capped) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            _, ann_id = await sign_up(client, "ann")
            for i in range(10):
                token, _ = await sign_up(client, f"fan{i}")
                await gql(client, FOLLOW, {"id": ann_id}, token=token)
            data = await gql(client, nested_followers(2, 10), token=token)
            fans = data["user"]["followers"]["edges"]
            assert len(fans) == 10 and all(f["node"]["followers"]["edges"] == [] for f in fans)
            api_clients = len(graph.client_list()) - 1  # minus this test's own connection
            assert 1 <= api_clients <= 2, api_clients
    graph.close()


async def test_websocket_messages_are_bounded_like_bodies(settings: Settings) -> None:
    """A message over MAX_BODY_BYTES closes the socket (1009, message too big); a query over
    MAX_QUERY_BYTES in a message that fits is refused with a coded error before parsing."""
    small = replace(settings, max_body_bytes=4000, max_query_bytes=1000)
    with serve_api(small) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, _ = await sign_up(client, "ann")
        socket = await open_socket(url, token)
        async with socket:
            await socket.send(subscribe("{ viewer { id } }" + " " * 2000))
            message = await answer(socket)
            assert isinstance(message, dict) and message["type"] == "error", message
            assert message["payload"][0]["extensions"]["code"] == "QUERY_TOO_LARGE"
            await socket.send(subscribe("{ viewer { username } }", padding="x" * 5000))
            assert await answer(socket) == 1009


async def test_deeply_nested_json_is_a_client_error(settings: Settings) -> None:
    nested = "[" * 20_000 + "]" * 20_000
    body = '{"query": "{ __typename }", "variables": {"v": ' + nested + "}}"
    with serve_api(settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            token, _ = await sign_up(client, "ann")
            response = await client.post(
                "/graphql", content=body, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 400, response.text
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
            variables = '{"v": ' + "[" * 5000 + "]" * 5000 + "}"  # fits in a URL
            response = await client.get(
                "/graphql", params={"query": "{ __typename }", "variables": variables}
            )
            assert response.status_code == 400, response.text
        socket = await open_socket(url, token)
        async with socket:
            await socket.send('{"id": "1", "type": "subscribe", "payload": ' + nested + "}")
            assert await answer(socket) == 4400
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:  # still serving
            assert (await gql(client, "{ __typename }"))["__typename"] == "Query"


def fragment_bomb(levels: int) -> str:
    """`{ ...F0 }`, each fragment spreading the next twice: 2**levels selections expanded, in
    under 40 bytes a level (the attack pass's finding)."""
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    return " ".join(["{ ...F0 }", *fragments, f"fragment F{levels} on Query {{ __typename }}"])


async def test_fragments_expanding_too_far_are_refused_before_validation(
    settings: Settings,
) -> None:
    """Rules that expand fragments (depth, aliases, cost) take time in proportion to the
    expansion, 2**40 here: refused from the document as sent, before any of them runs."""
    with serve_api(settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for query in (fragment_bomb(40), fragment_bomb(40) + " # another text, uncached"):
                code, message = await gql_error(client, query)
                assert code == "QUERY_TOO_COMPLEX" and "selections" in message, message
            data = await gql(client, fragment_bomb(8))  # 256 selections: a fine document
            assert data == {"__typename": "Query"}
            # A fragment spreading itself counts nothing here; validation names the cycle.
            code, message = await gql_error(client, "{ ...A } fragment A on Query { ...A }")
            assert code == "GRAPHQL_VALIDATION_FAILED" and "A" in message, message


async def test_a_body_that_is_not_utf8_is_a_client_error(settings: Settings) -> None:
    with serve_api(settings) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            response = await client.post(
                "/graphql",
                content=b'{"query": "{ __typename \xff }"}',  # \xff: never in UTF-8
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 400, response.text
            assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
            # The connection is still good for the next request.
            assert (await gql(client, "{ __typename }"))["__typename"] == "Query"


async def test_forwarded_for_counts_only_from_trusted_proxies(settings: Settings) -> None:
    """Sign-ups are limited per client address. From an untrusted peer (TRUSTED_PROXIES empty),
    a rotating X-Forwarded-For changes nothing; from a trusted proxy it names the client."""

    async def sign_ups(url: str, names: list[str]) -> list[str | None]:
        """Each sign-up from a different forwarded address: its error code, or None."""
        codes: list[str | None] = []
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for i, name in enumerate(names):
                variables = {"username": name, "password": PASSWORD, "displayName": name}
                response = await client.post(
                    "/graphql",
                    json={"query": SIGN_UP, "variables": variables},
                    headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
                )
                errors = response.json().get("errors")
                codes.append(errors[0]["extensions"]["code"] if errors else None)
        return codes

    limited = replace(settings, rate_signups="2/3600")
    with serve_api(limited) as url:
        assert await sign_ups(url, ["ann", "bob", "cat"]) == [None, None, "RATE_LIMITED"]
    behind_proxy = replace(limited, trusted_proxies=LOOPBACK)
    with serve_api(behind_proxy) as url:
        assert await sign_ups(url, ["dan", "eve", "fay"]) == [None, None, None]
