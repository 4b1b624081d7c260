"""Property-based fuzzing of every mutation's arguments and of ids and cursors: the answer is a
success or errors that each carry a client-facing `extensions.code`, never an internal error, and
an error leaves the stores as they were."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest
import redis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from settings import Settings
from tests.gql import PASSWORD, SIGN_UP

CLIENT_CODES = {
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "RATE_LIMITED",
    "GRAPHQL_VALIDATION_FAILED",
}
# Bookkeeping an attempt may leave even when it fails: rate-limit windows, queued jobs (which
# find nothing to do), id leases, live presence.
IGNORED_PREFIXES = (b"rate:", b"dramatiq:", b"idgen:", b"presence:", b"fanout:")

OPERATIONS = {
    "signUp": "mutation($a: String!, $b: String!, $c: String!) "
    "{ signUp(username: $a, password: $b, displayName: $c) { token } }",
    "logIn": "mutation($a: String!, $b: String!) { logIn(username: $a, password: $b) { token } }",
    "follow": "mutation($a: ID!) { follow(userId: $a) { id } }",
    "unfollow": "mutation($a: ID!) { unfollow(userId: $a) { id } }",
    "createTweet": "mutation($a: String!, $b: [ID!], $c: String) "
    "{ createTweet(text: $a, mediaIds: $b, idempotencyKey: $c) { id } }",
    "deleteTweet": "mutation($a: ID!) { deleteTweet(id: $a) }",
    "createMediaUpload": "mutation($a: String!, $b: Int!) "
    "{ createMediaUpload(contentType: $a, byteSize: $b) { id } }",
    "tweet": "query($a: ID!) { tweet(id: $a) { id } }",
    "feed": "query($a: Int!, $b: String) { feed(first: $a, after: $b) { edges { cursor } } }",
    "followers": "query($a: String!, $b: Int!, $c: String) "
    "{ user(username: $a) { followers(first: $b, after: $c) { edges { cursor } } } }",
    "tweets": "query($a: String!, $b: Int!, $c: String) "
    "{ user(username: $a) { tweets(first: $b, after: $c) { edges { cursor } } } }",
}


def encoded(kind: str, *parts: object) -> str:
    raw = ":".join([kind, *(str(p) for p in parts)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


numbers = st.integers(min_value=-(2**70), max_value=2**70)
kinds = st.sampled_from(["User", "Tweet", "Media", "feed", "follow", "timeline"])
ids = st.one_of(
    st.text(max_size=40),
    st.builds(encoded, kinds, numbers, numbers),
    st.builds(encoded, kinds, numbers),
)
values = st.one_of(
    st.none(), st.booleans(), numbers, st.text(max_size=400), ids, st.lists(ids, max_size=6)
)


@pytest.fixture
def session(api_url: str, settings: Settings) -> Iterator[tuple[httpx.Client, str]]:
    with httpx.Client(base_url=api_url, timeout=30) as client:
        body = client.post(
            "/graphql",
            json={
                "query": SIGN_UP,
                "variables": {"username": "fuzzer", "password": PASSWORD, "displayName": "F"},
            },
        ).json()
        yield client, body["data"]["signUp"]["token"]


def snapshot(settings: Settings) -> tuple[dict[bytes, bytes], list]:
    """Every document key with its value's dump, and the graph's node and edge counts."""
    client = redis.Redis.from_url(settings.documents_redis_url)
    try:
        keys = sorted(k for k in client.keys("*") if not k.startswith(IGNORED_PREFIXES))
        dumps = {k: client.dump(k) for k in keys if not k.startswith(b"social-")}
    finally:
        client.close()
    graph = redis.Redis.from_url(settings.falkordb_url)
    try:
        query = "MATCH (n) OPTIONAL MATCH (n)-[r]->() RETURN count(DISTINCT n), count(r)"
        counts = graph.execute_command("GRAPH.RO_QUERY", settings.graph_name, query)[1]
    finally:
        graph.close()
    return dumps, counts


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(a=values, b=values, c=values, authenticated=st.booleans())
def test_fuzzed_arguments_get_coded_answers_and_errors_change_nothing(
    session: tuple[httpx.Client, str],
    settings: Settings,
    operation: str,
    a: object,
    b: object,
    c: object,
    authenticated: bool,
) -> None:
    client, token = session
    before = snapshot(settings)
    headers = {"Authorization": f"Bearer {token}"} if authenticated else {}
    response = client.post(
        "/graphql",
        json={"query": OPERATIONS[operation], "variables": {"a": a, "b": b, "c": c}},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    errors = body.get("errors") or []
    for error in errors:
        assert error["extensions"]["code"] in CLIENT_CODES, error
    if errors:
        assert snapshot(settings) == before, (operation, a, b, c, errors)
