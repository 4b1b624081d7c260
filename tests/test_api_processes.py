"""The API as `python -m web.serve` runs it with WEB_CONCURRENCY=2: two worker processes behind
one port, each with its own id lease, tweet cache and live hub, and none outliving uvicorn."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from devstack.servers import LOOPBACK, ManagedProcess, free_port
from resolvers.ids import parse_tweet_global_id
from settings import Settings
from storage.ids import SEQUENCE_BITS, WORKER_BITS
from tests.gql import DELETE_TWEET, LOG_IN, PASSWORD, gql, sign_up, tweet
from tests.servers import ROOT, wait_until
from tests.test_devstack import alive, descendants
from tests.test_ws_auth import TRANSPORT_WS, answer, init, ws_url

TWEET = "query($id: ID!) { tweet(id: $id) { text } }"


@contextmanager
def api_processes(settings: Settings, tmp_path: Path, workers: int) -> Iterator[tuple[str, int]]:
    """`python -m web.serve` with `workers` processes on a free port: (URL, launcher pid)."""
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    settings = replace(settings, port=port, host=LOOPBACK, public_api_url=url)
    env = {**os.environ, **settings.to_env(), "WEB_CONCURRENCY": str(workers)}
    api = ManagedProcess(
        "api", [sys.executable, "-m", "web.serve"], env=env, cwd=ROOT, log_path=tmp_path / "api.log"
    )
    try:
        wait_until(lambda: healthy(url), 60, what="the API processes to serve")
        yield url, api.process.pid
    finally:
        api.stop()


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def worker_number(tweet_id: int) -> int:
    return (tweet_id >> SEQUENCE_BITS) & ((1 << WORKER_BITS) - 1)


def fresh_client(url: str) -> httpx.AsyncClient:
    """A client that opens a new connection per request, so requests spread over processes."""
    return httpx.AsyncClient(
        base_url=url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
    )


async def test_two_api_processes_share_nothing_they_must_not(
    settings: Settings, tmp_path: Path
) -> None:
    with api_processes(settings, tmp_path, workers=2) as (url, launcher):
        processes = descendants(launcher)
        assert len(processes) >= 2  # uvicorn's supervisor spawns the two workers
        async with fresh_client(url) as client:
            token, _ = await sign_up(client, "ann")
            # Bursts of tweets on fresh connections until both processes have taken some (the
            # kernel hands each connection to whichever process accepts first): each issues ids
            # under its own leased worker number, and no id repeats.
            posted: list[dict] = []
            for burst in range(10):
                texts = [f"t{burst}.{n}" for n in range(20)]
                posted += await asyncio.gather(*(tweet(client, token, t) for t in texts))
                ids = [parse_tweet_global_id(p["id"])[1] for p in posted]
                if len({worker_number(i) for i in ids}) == 2:
                    break
            assert len(set(ids)) == len(ids)
            assert len({worker_number(i) for i in ids}) == 2

            target = posted[0]["id"]
            reads = [gql(client, TWEET, {"id": target}) for _ in range(20)]
            assert all(r["tweet"] == {"text": "t0.0"} for r in await asyncio.gather(*reads))
            await gql(client, DELETE_TWEET, {"id": target}, token=token)
            reads = [gql(client, TWEET, {"id": target}) for _ in range(20)]
            assert all(r["tweet"] is None for r in await asyncio.gather(*reads))  # every cache

            sockets = [await connect(ws_url(url), subprotocols=[TRANSPORT_WS]) for _ in range(4)]
            try:
                for socket in sockets:
                    await socket.send(init(token))
                    assert (await answer(socket)) == {"type": "connection_ack"}
                logged_in = await gql(client, LOG_IN, {"username": "ann", "password": PASSWORD})
                fresh = logged_in["logIn"]["token"]
                await gql(client, "mutation { logOutEverywhere }", token=fresh)
                for socket in sockets:  # whichever process holds it
                    assert await answer(socket) == (4401, "Unauthorized: token expired or revoked")
            finally:
                for socket in sockets:
                    await socket.close()
    await asyncio.to_thread(
        wait_until, lambda: not any(alive(p) for p in processes), 30, what="the workers to exit"
    )


def test_workers_die_with_a_killed_launcher(settings: Settings, tmp_path: Path) -> None:
    with api_processes(settings, tmp_path, workers=2) as (_, launcher):
        processes = descendants(launcher)
        os.kill(launcher, signal.SIGKILL)
        wait_until(lambda: not any(alive(p) for p in processes), 30, what="orphaned workers")
