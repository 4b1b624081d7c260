"""A sign-up that dies before claiming its name is cleaned up by a real Dramatiq worker."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pytest
import redis

from devstack.servers import ManagedProcess
from graph.factory import open_graph
from settings import Settings
from storage.accounts import AccountStore, Profile
from storage.redis_clients import open_redis
from tests.gql import sign_up
from tests.servers import wait_until
from wiring import open_jobs


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A short claim grace, so the finished sign-up's own collection job runs during the test."""
    return replace(settings, signup_claim_grace_seconds=2)


async def test_unclaimed_sign_up_is_collected_and_claimed_one_kept(
    client: httpx.AsyncClient, settings: Settings, worker: ManagedProcess
) -> None:
    _, _ = await sign_up(client, "finished")
    documents = open_redis(settings.documents_redis_url, timeout_seconds=2)
    accounts = AccountStore(documents)
    graph = open_graph(settings)
    jobs = open_jobs(settings)
    try:
        finished_id = await accounts.owner_of("finished")
        assert finished_id is not None
        # Steps 1-3 of a sign-up that then crashed: job queued, profile and node written, no claim.
        crashed = Profile(4242, "crashed", "Crashed", "hash", created_at_ms=1)
        await jobs.collect_unclaimed_account_later(crashed.user_id, "crashed", delay_seconds=0)
        await accounts.save_profile(crashed)
        await graph.create_user(crashed.user_id, "crashed")

        def collected() -> bool:
            client = redis.Redis.from_url(settings.documents_redis_url)
            try:
                return not client.exists("user:{4242}")
            finally:
                client.close()

        await asyncio.to_thread(wait_until, collected, what="the crashed sign-up's profile to go")
        assert await graph.counts([crashed.user_id]) == {}
        assert await accounts.owner_of("crashed") is None
        # The finished sign-up's own job (enqueued by signUp, due after the 2 s grace) ran and
        # left that account alone.
        await asyncio.to_thread(
            wait_until, lambda: not _queued(settings), what="the accounts queue to drain"
        )
        assert (await accounts.profiles([finished_id]))[finished_id].username == "finished"
        assert finished_id in await graph.counts([finished_id])
    finally:
        jobs.close()
        await graph.close()
        await documents.aclose()


def _queued(settings: Settings) -> int:
    """Messages of the accounts queue not yet acknowledged, delayed ones included."""
    client = redis.Redis.from_url(settings.broker_redis_url)
    try:
        return client.hlen("dramatiq:accounts.msgs") + client.hlen("dramatiq:accounts.DQ.msgs")
    finally:
        client.close()
