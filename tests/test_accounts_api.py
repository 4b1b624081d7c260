"""Accounts over GraphQL/HTTP against the real app: sign-up, log-in, tokens, lookups."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest
import redis

from settings import Settings
from tests.gql import LOG_IN, PASSWORD, SIGN_UP, VIEWER, gql, gql_error, post, sign_up

USER = "query($u: String!) { user(username: $u) { id username displayName } }"


def stored_accounts(settings: Settings) -> tuple[list[bytes], list[bytes]]:
    client = redis.Redis.from_url(settings.documents_redis_url)
    try:
        return sorted(client.keys("username:*")), sorted(client.keys("user:*"))
    finally:
        client.close()


async def test_sign_up_returns_a_token_for_the_viewer(client: httpx.AsyncClient) -> None:
    data = await gql(
        client, SIGN_UP, {"username": "Alice_1", "password": PASSWORD, "displayName": " Alice "}
    )
    user = data["signUp"]["user"]
    assert user["username"] == "Alice_1"
    assert user["displayName"] == "Alice"
    assert (user["followersCount"], user["followingCount"]) == (0, 0)
    viewer = (await gql(client, VIEWER, token=data["signUp"]["token"]))["viewer"]
    assert viewer["id"] == user["id"]


async def test_log_in_and_lookup_by_any_case(client: httpx.AsyncClient) -> None:
    _, alice_id = await sign_up(client, "Alice")
    data = await gql(client, LOG_IN, {"username": "alice", "password": PASSWORD})
    assert data["logIn"]["user"]["id"] == alice_id
    assert (await gql(client, VIEWER, token=data["logIn"]["token"]))["viewer"]["id"] == alice_id
    found = (await gql(client, USER, {"u": "ALICE"}))["user"]
    assert found == {"id": alice_id, "username": "Alice", "displayName": "Alice"}
    assert (await gql(client, USER, {"u": "nobody"}))["user"] is None
    assert (await gql(client, USER, {"u": "not a name!"}))["user"] is None


async def test_wrong_password_and_unknown_user_look_the_same(client: httpx.AsyncClient) -> None:
    await sign_up(client, "alice")
    wrong = await gql_error(client, LOG_IN, {"username": "alice", "password": "not the password"})
    unknown = await gql_error(client, LOG_IN, {"username": "nobody", "password": PASSWORD})
    assert wrong == unknown == ("UNAUTHENTICATED", "invalid username or password")


@pytest.mark.parametrize(
    ("username", "password", "display_name"),
    [
        ("", PASSWORD, "x"),
        ("a" * 16, PASSWORD, "x"),
        ("bad-name", PASSWORD, "x"),
        ("émile", PASSWORD, "x"),
        ("bob", "short", "x"),
        ("bob", "p" * 129, "x"),
        ("bob", PASSWORD, "   "),
        ("bob", PASSWORD, "x" * 51),
        ("bob", PASSWORD, "tab\there"),
    ],
)
async def test_bad_sign_up_input_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, settings: Settings, username: str, password: str, display_name: str
) -> None:
    variables = {"username": username, "password": password, "displayName": display_name}
    code, _ = await gql_error(client, SIGN_UP, variables)
    assert code == "BAD_USER_INPUT"
    assert stored_accounts(settings) == ([], [])


async def test_duplicate_username_in_any_case_is_refused(client: httpx.AsyncClient) -> None:
    await sign_up(client, "Bob")
    variables = {"username": "bOB", "password": PASSWORD, "displayName": "Other"}
    assert await gql_error(client, SIGN_UP, variables) == ("BAD_USER_INPUT", "username is taken")


async def test_concurrent_sign_ups_for_one_name_make_exactly_one_account(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    names = ["bob", "Bob", "BOB", "bOb"] * 5
    bodies = await asyncio.gather(
        *(
            post(client, SIGN_UP, {"username": n, "password": PASSWORD, "displayName": n})
            for n in names
        )
    )
    winners = [b for b in bodies if "errors" not in b]
    losers = [b for b in bodies if "errors" in b]
    assert len(winners) == 1
    assert {b["errors"][0]["extensions"]["code"] for b in losers} == {"BAD_USER_INPUT"}
    username_keys, profile_keys = stored_accounts(settings)
    assert username_keys == [b"username:bob"]
    assert len(profile_keys) == 1  # losers removed what they had written


def forged(settings: Settings, **claims: object) -> str:
    payload = {"sub": "1", "ver": 0, "iat": int(time.time()), "exp": int(time.time()) + 60}
    return jwt.encode({**payload, **claims}, settings.jwt_secret, algorithm="HS256")


async def test_bad_tokens_are_unauthenticated(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    token, user_id = await sign_up(client, "alice")
    sub = jwt.decode(token, options={"verify_signature": False})["sub"]
    expired = forged(settings, sub=sub, iat=int(time.time()) - 100, exp=int(time.time()) - 10)
    resigned = jwt.encode(
        jwt.decode(token, options={"verify_signature": False}), "another secret" * 4, "HS256"
    )
    unsigned = jwt.encode({"sub": sub, "ver": 0, "iat": 1, "exp": 2**40}, None, algorithm="none")
    for bad in [None, "garbage", expired, resigned, unsigned, forged(settings, sub=sub, ver=7)]:
        code, _ = await gql_error(client, VIEWER, token=bad)
        assert code == "UNAUTHENTICATED", bad
    # A bad token does not break public fields.
    assert (await gql(client, USER, {"u": "alice"}, token="garbage"))["user"]["id"] == user_id
