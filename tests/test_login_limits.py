"""Log-in limits: failures are refused per address and per (username, address); an account's
failures from many addresses slow it down (attempts take turns, the queue bounded), so guessing
from many addresses at once reaches the password check once per delay and cannot lock its owner
out for longer than the delay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from ops.metrics import Metrics
from resolvers import accounts
from resolvers.context import RequestContext, Services
from settings import Settings
from social.accounts import login_delay
from social.errors import BadCredentials as Unauthenticated
from social.errors import TooManyAttempts as RateLimited
from tests.gql import LOG_IN, PASSWORD, gql, gql_error, sign_up
from tests.servers import serve_api
from wiring import open_services

WRONG = "not the password"


def production_login_limits(settings: Settings) -> Settings:
    """The production log-in limits, with delays short enough for a test."""
    return replace(
        settings,
        rate_logins="10/300",
        rate_logins_per_account_ip="5/300",
        rate_logins_per_account="5/900",
        login_delay_max_seconds=0.05,
    )


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with open_services(production_login_limits(settings), Metrics()) as opened:
        yield opened


def from_address(services: Services, address: str) -> RequestContext:
    return RequestContext(services=services, token=None, client_ip=address)


async def test_guessing_from_many_addresses_does_not_lock_the_owner_out(
    client: httpx.AsyncClient, services: Services
) -> None:
    await sign_up(client, "alice")
    for n in range(10):
        with pytest.raises(Unauthenticated):
            await accounts.log_in(from_address(services, f"203.0.113.{n}"), "alice", WRONG)
    session = await accounts.log_in(from_address(services, "198.51.100.7"), "Alice", PASSWORD)
    assert session.profile.username == "alice"


async def test_failures_are_refused_per_address_and_per_username_and_address(
    client: httpx.AsyncClient, services: Services
) -> None:
    for name in ("alice", "bob"):
        await sign_up(client, name)
    attacker = from_address(services, "203.0.113.1")
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await accounts.log_in(attacker, "alice", WRONG)
    with pytest.raises(RateLimited):  # this (username, address) is done guessing
        await accounts.log_in(attacker, "alice", PASSWORD)
    # The owner elsewhere is not refused, and the address may still try other names...
    await accounts.log_in(from_address(services, "198.51.100.7"), "alice", PASSWORD)
    for _ in range(4):
        with pytest.raises(Unauthenticated):
            await accounts.log_in(attacker, "bob", WRONG)
    # ...until it has failed 10 times over all names (the refused attempt above counted too).
    with pytest.raises(RateLimited):
        await accounts.log_in(attacker, "bob", PASSWORD)


async def test_successful_log_ins_do_not_count_as_failures(
    client: httpx.AsyncClient, services: Services
) -> None:
    await sign_up(client, "alice")
    office = from_address(services, "192.0.2.1")  # many people behind one address
    for _ in range(12):
        await accounts.log_in(office, "alice", PASSWORD)
    for _ in range(4):
        with pytest.raises(Unauthenticated):
            await accounts.log_in(office, "alice", WRONG)
    await accounts.log_in(office, "alice", PASSWORD)


async def test_concurrent_guesses_from_many_addresses_reach_the_check_once_per_delay(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """30 guesses at once from 30 addresses: the first few are free, then the account's turns
    are the delay apart and the queue is at most LOGIN_DELAY_MAX_SECONDS long, so the rest are
    refused before any password is checked; the owner is then told when to retry, and can."""
    await sign_up(client, "alice")
    slow = replace(production_login_limits(settings), login_delay_max_seconds=2.0)
    async with open_services(slow, Metrics()) as opened:
        guesses = [
            accounts.log_in(from_address(opened, f"203.0.113.{n}"), "alice", WRONG)
            for n in range(30)
        ]
        outcomes = await asyncio.gather(*guesses, return_exceptions=True)
        checked = sum(isinstance(outcome, Unauthenticated) for outcome in outcomes)
        refused = [outcome for outcome in outcomes if isinstance(outcome, RateLimited)]
        assert checked + len(refused) == 30
        assert checked <= 5 + 2  # the free failures, then a turn now + 1 s and one at + 2 s
        assert all(0 < error.details["retryAfter"] <= 2 for error in refused)
        owner = from_address(opened, "198.51.100.7")
        try:
            session = await accounts.log_in(owner, "alice", PASSWORD)
        except RateLimited as busy:
            await asyncio.sleep(busy.details["retryAfter"])
            session = await accounts.log_in(owner, "alice", PASSWORD)
        assert session.profile.username == "alice"


def test_an_accounts_failures_slow_it_down_up_to_the_maximum() -> None:
    delays = [login_delay(failures, 5, 10.0) for failures in range(12)]
    assert delays == [0, 0, 0, 0, 0, 1, 2, 4, 8, 10, 10, 10]
    assert login_delay(10**6, 5, 10.0) == 10


async def test_per_username_and_address_limit_over_http(settings: Settings) -> None:
    with serve_api(production_login_limits(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for name in ("alice", "bob"):
                await sign_up(client, name)
            wrong = {"username": "alice", "password": WRONG}
            for _ in range(5):
                assert (await gql_error(client, LOG_IN, wrong))[0] == "UNAUTHENTICATED"
            right = {"username": "alice", "password": PASSWORD}
            code, _ = await gql_error(client, LOG_IN, right)
            assert code == "RATE_LIMITED"
            bob = await gql(client, LOG_IN, {"username": "bob", "password": PASSWORD})
            assert bob["logIn"]["user"]["username"] == "bob"
