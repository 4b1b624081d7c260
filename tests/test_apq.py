"""Automatic persisted queries (web/persisted_queries.py) over real HTTP, as Apollo Client's
persisted-query link speaks them: hash first, the text on PERSISTED_QUERY_NOT_FOUND, the hash
alone afterwards; and what the store keeps (only validated texts, within its bounds)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from settings import Settings
from tests.gql import LOG_IN, PASSWORD, sign_up
from tests.servers import serve_api
from web.persisted_queries import QueryStore, sha256_hex

QUERY = '{ user(username: "ann") { username followersCount } }'
ANN = {"user": {"username": "ann", "followersCount": 0}}
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


def persisted(sha256: str, version: object = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha256}}


async def post(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/graphql", json=body)


async def get(
    client: httpx.AsyncClient, headers: dict | None = None, **params: Any
) -> httpx.Response:
    """GET /graphql with `extensions` and `variables` URL-encoded as JSON, as Apollo does."""
    encoded = {
        k: json.dumps(v) if k in ("extensions", "variables") else v for k, v in params.items()
    }
    return await client.get("/graphql", params=encoded, headers=headers or {})


def error_code(response: httpx.Response) -> str:
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    return errors[0]["extensions"]["code"]


def assert_not_found(response: httpx.Response) -> None:
    """Apollo Server's answer: 200 (the client retries with the text; a 4xx would make it
    give up on persisted queries), no `data`, never cached."""
    assert response.status_code == 200, response.text
    assert error_code(response) == "PERSISTED_QUERY_NOT_FOUND"
    assert response.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert "data" not in response.json()
    assert response.headers["cache-control"] == "no-store"


async def test_post_round_trip(client: httpx.AsyncClient) -> None:
    await sign_up(client, "ann")
    sha = sha256_hex(QUERY)
    assert_not_found(await post(client, extensions=persisted(sha)))
    registered = await post(client, query=QUERY, extensions=persisted(sha))
    assert registered.json() == {"data": ANN}
    by_hash = await post(client, extensions=persisted(sha))
    assert by_hash.json() == {"data": ANN}


async def test_get_round_trip(client: httpx.AsyncClient) -> None:
    """Apollo Client 3 sends `Accept: */*`: a GET with only a hash must still run (not be
    taken for a browser asking for GraphiQL). The hash-only GET is what caches share."""
    await sign_up(client, "ann")
    query = "query Ann($u: String!) { user(username: $u) { username followersCount } }"
    sha = sha256_hex(query)
    request = {"operationName": "Ann", "variables": {"u": "ann"}}
    accept = {"Accept": "*/*"}
    assert_not_found(await get(client, accept, extensions=persisted(sha), **request))
    registered = await get(client, accept, query=query, extensions=persisted(sha), **request)
    assert registered.json() == {"data": ANN}
    by_hash = await get(client, accept, extensions=persisted(sha), **request)
    assert by_hash.json() == {"data": ANN}
    assert by_hash.headers["cache-control"] == "public, max-age=5"


async def test_not_found_is_200_under_graphql_response_json(client: httpx.AsyncClient) -> None:
    """As Apollo Server answers it: the spec's 4xx for request errors would stop the retry."""
    response = await client.post(
        "/graphql",
        json={"extensions": persisted(sha256_hex(QUERY))},
        headers={"Accept": GRAPHQL_RESPONSE_JSON},
    )
    assert_not_found(response)
    assert response.headers["content-type"] == GRAPHQL_RESPONSE_JSON


async def test_hash_mismatch_is_refused_and_nothing_is_stored(client: httpx.AsyncClient) -> None:
    await sign_up(client, "ann")
    claimed = sha256_hex("{ __typename }")
    response = await post(client, query=QUERY, extensions=persisted(claimed))
    assert response.status_code == 400
    assert error_code(response) == "BAD_USER_INPUT"
    assert response.json()["errors"][0]["message"] == "provided sha does not match query"
    assert "data" not in response.json()
    assert_not_found(await post(client, extensions=persisted(claimed)))
    assert_not_found(await post(client, extensions=persisted(sha256_hex(QUERY))))


async def test_oversized_query_is_refused_before_hashing(client: httpx.AsyncClient) -> None:
    """Over MAX_QUERY_BYTES (20,000 here) the text is refused unparsed and unhashed: even a
    wrong hash gets QUERY_TOO_LARGE, not a hash mismatch; and nothing is kept."""
    oversized = "{ __typename }" + " " * 20_000
    for sha in (sha256_hex(oversized), "0" * 64):
        response = await post(client, query=oversized, extensions=persisted(sha))
        assert error_code(response) == "QUERY_TOO_LARGE"
    assert_not_found(await post(client, extensions=persisted(sha256_hex(oversized))))


@pytest.mark.parametrize(
    ("query", "reason"),
    [("{ user(", "Syntax Error"), ("{ nonsense }", "Cannot query field")],
)
async def test_refused_texts_are_not_stored(
    client: httpx.AsyncClient, query: str, reason: str
) -> None:
    """A text that fails to parse or validate is refused as usual and not kept."""
    sha = sha256_hex(query)
    response = await post(client, query=query, extensions=persisted(sha))
    assert error_code(response) == "GRAPHQL_VALIDATION_FAILED"
    assert reason in response.json()["errors"][0]["message"]
    assert_not_found(await post(client, extensions=persisted(sha)))


async def test_persisted_mutation_over_get_is_405(client: httpx.AsyncClient) -> None:
    """A mutation registered over POST still cannot run by its hash over GET."""
    await sign_up(client, "ann")
    sha = sha256_hex(LOG_IN)
    variables = {"username": "ann", "password": PASSWORD}
    registered = await post(client, query=LOG_IN, variables=variables, extensions=persisted(sha))
    assert registered.json()["data"]["logIn"]["user"]["username"] == "ann"
    for text in ({}, {"query": LOG_IN}):
        response = await get(client, extensions=persisted(sha), variables=variables, **text)
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert error_code(response) == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"extensions": "{not json"}, "`extensions` parameter is not valid JSON"),
        ({"extensions": "[1]"}, "`extensions` must be an object"),
        ({"variables": "{not json", "query": "{ __typename }"}, "`variables` parameter"),
        (
            {"extensions": json.dumps(persisted(sha256_hex(QUERY), version=2))},
            "Unsupported persisted query version",
        ),
        ({"extensions": json.dumps(persisted("not-hex"))}, "64 hexadecimal digits"),
        ({"extensions": json.dumps({"persistedQuery": "abc"})}, "must be an object"),
    ],
)
async def test_malformed_extensions_get_a_coded_400(
    client: httpx.AsyncClient, params: dict[str, str], reason: str
) -> None:
    response = await client.get("/graphql", params=params, headers={"Accept": "*/*"})
    assert response.status_code == 400, response.text
    assert error_code(response) == "BAD_REQUEST"
    assert reason in response.json()["errors"][0]["message"]
    assert response.headers["cache-control"] == "no-store"


async def test_many_hashes_cannot_grow_the_store(settings: Settings) -> None:
    """Unknown hashes store nothing; registrations beyond APQ_CACHE_SIZE push the least
    recently used out (their clients register them again)."""
    with serve_api(replace(settings, apq_cache_size=3)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for number in range(300):
                unknown = sha256_hex(f"{{ a{number}: __typename }}")
                assert_not_found(await post(client, extensions=persisted(unknown)))
            queries = {f"b{number}": f"{{ b{number}: __typename }}" for number in range(5)}
            for query in queries.values():
                response = await post(client, query=query, extensions=persisted(sha256_hex(query)))
                assert "errors" not in response.json()
            for alias, query in queries.items():
                response = await post(client, extensions=persisted(sha256_hex(query)))
                if alias in ("b0", "b1"):
                    assert_not_found(response)
                else:
                    assert response.json() == {"data": {alias: "Query"}}


async def test_persisted_queries_can_be_turned_off(settings: Settings) -> None:
    """APQ_CACHE_SIZE=0: the client is told, as Apollo Server tells it, and stops trying."""
    with serve_api(replace(settings, apq_cache_size=0)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            response = await post(client, extensions=persisted(sha256_hex(QUERY)))
            assert response.status_code == 200
            assert error_code(response) == "PERSISTED_QUERY_NOT_SUPPORTED"


def test_store_is_bounded_by_entries_and_bytes() -> None:
    store = QueryStore(max_entries=100, max_bytes=1000)
    texts = [f"{{ a{number}: __typename }}" + " " * 200 for number in range(50)]
    for text in texts:
        store.put(sha256_hex(text), text)
        assert store.bytes_held <= 1000
    assert len(store) == 3  # (64 + 222) bytes each
    assert [store.get(sha256_hex(text)) for text in texts[-3:]] == texts[-3:]
    huge = "{ __typename }" + " " * 1000
    store.put(sha256_hex(huge), huge)  # larger than the whole bound: not kept, nothing evicted
    assert store.get(sha256_hex(huge)) is None and len(store) == 3

    by_count = QueryStore(max_entries=2, max_bytes=10_000)
    for text in texts[:3]:
        by_count.put(sha256_hex(text), text)
    assert by_count.get(sha256_hex(texts[0])) is None
    by_count.get(sha256_hex(texts[1]))  # used: the other one goes first
    by_count.put(sha256_hex(texts[3]), texts[3])
    assert by_count.get(sha256_hex(texts[1])) == texts[1]
    assert by_count.get(sha256_hex(texts[2])) is None
