"""`make run-scaled` (python -m devstack.scaled), started once for this module, spoken to the way
clients reach it: through nginx, which balances over the two API replicas.

The tests run in file order and the last ones break the stack on purpose: kill -9 of one API
replica (nginx routes around it, its subscriber reconnects to the other and resumes from its
cursor), then kill -9 of the supervisor (nothing of the stack survives).

Skipped with the reason when nginx is not installed, unless REQUIRE_NGINX=1 (as in .ci/run).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from devstack.scaled import API_REPLICAS, MEDIA_BUCKET, Ports, stack_env
from devstack.servers import LOOPBACK, free_port, free_port_between
from resolvers.ids import parse_user_global_id
from settings import Settings
from storage.presence import presence_key
from storage.redis_clients import open_feed_redis
from tests.gql import CREATE_MEDIA_UPLOAD, FEED, FOLLOW, gql, read_feed, sign_up, tweet
from tests.images import exif_of, jpeg_with_gps
from tests.servers import ROOT, queues_idle, wait_until
from tests.test_devstack import alive, command_line, descendants, wait_for_exit
from tests.test_nginx_cache import require_nginx

T = TypeVar("T")
SCALED = [sys.executable, "-m", "devstack.scaled"]
READY = "devstack: scaled stack at"
SUBSCRIBE = """
subscription($after: String) {
  feedUpdates(after: $after) {
    __typename
    ... on FeedTweet { cursor tweet { text author { username } } }
  }
}
"""
# uvicorn's access log line for a WebSocket it accepted
WS_ACCEPTED = '"WebSocket /graphql" [accepted]'
LOAD_CLIENTS = 2  # per kind (GET, POST) during the replica kill


@dataclass
class ScaledStack:
    process: subprocess.Popen
    var_dir: Path
    ports: Ports
    output: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.public}"

    def settings(self) -> Settings:
        """What the stack's children read (the JWT secret from the stack's own VAR_DIR)."""
        return Settings.from_env(stack_env(self.ports, self.var_dir, {}))

    def api_url(self, replica: int) -> str:
        return f"http://{LOOPBACK}:{self.ports.apis[replica]}"

    def log(self, replica: int) -> str:
        return (self.var_dir / "logs" / f"api-{replica + 1}.log").read_text(errors="replace")

    def said(self) -> str:
        return self.output.read_text()


def _started(stack: ScaledStack) -> bool:
    if stack.process.poll() is not None:
        raise AssertionError(f"the scaled stack exited:\n{stack.said()}")
    return READY in stack.said()


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaledStack]:
    require_nginx()
    work = tmp_path_factory.mktemp("scaled")
    var_dir = work / "var"
    # Below the ephemeral range (32768+), where free_port() and clients' sockets come from.
    base = free_port_between(20_000, 32_000, offsets=tuple(range(Ports.SPAN)))
    ports = Ports(public=free_port(), base=base)
    env = {
        **os.environ,
        "VAR_DIR": str(var_dir),
        "PORT": str(ports.public),
        "SCALED_BASE_PORT": str(base),
        # cheap hashing keeps the test fast; the stack is otherwise exactly `make run-scaled`
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "8",
        "ARGON2_PARALLELISM": "1",
    }
    env.pop("JWT_SECRET", None)
    output = work / "supervisor.out"
    with open(output, "w") as sink:
        process = subprocess.Popen(
            SCALED, cwd=ROOT, env=env, start_new_session=True, stdout=sink, stderr=sink
        )
    stack = ScaledStack(process, var_dir, ports, output)
    try:
        wait_until(lambda: _started(stack), timeout=180, what="the scaled stack to start")
        yield stack
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
            process.wait(90)
        wait_for_exit(var_dir, 30)


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("PORT", "abc", "bad setting: PORT"),
        ("SCALED_BASE_PORT", "65520", "bad setting: SCALED_BASE_PORT"),
        ("PORT", "7005", "bad setting: PORT: 7005 is inside SCALED_BASE_PORT's range"),
        ("JWT_SECRET", "too short", "bad setting: JWT_SECRET"),
        ("MAX_PAGE_SIZE", "abc", "bad setting: MAX_PAGE_SIZE"),
    ],
)
def test_a_bad_setting_is_named_before_anything_starts(
    tmp_path: Path, name: str, value: str, said: str
) -> None:
    require_nginx()
    env = {**os.environ, "VAR_DIR": str(tmp_path / "var"), "SCALED_BASE_PORT": "7000", name: value}
    done = subprocess.run(SCALED, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"devstack: {said}" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "var" / "logs").exists()  # no child was started


def test_a_busy_port_is_named_before_anything_starts(tmp_path: Path) -> None:
    require_nginx()
    base = free_port_between(20_000, 32_000, offsets=tuple(range(Ports.SPAN)))
    ports = Ports(public=free_port(), base=base)
    env = {
        **os.environ,
        "VAR_DIR": str(tmp_path / "var"),
        "PORT": str(ports.public),
        "SCALED_BASE_PORT": str(base),
    }
    with socket.socket() as holder:
        holder.bind((LOOPBACK, ports.graph_replica))
        holder.listen()
        done = subprocess.run(SCALED, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"port {ports.graph_replica} (FalkorDB replica) is already in use" in done.stderr
    assert not (tmp_path / "var" / "logs").exists()


# -- which replica served what ---------------------------------------------------------------


def graphql_requests(stack: ScaledStack) -> list[int]:
    """/graphql requests each API replica has answered (its own counter, read past nginx)."""
    counts = []
    for replica in range(API_REPLICAS):
        text = httpx.get(f"{stack.api_url(replica)}/metrics", timeout=10).text
        found = re.findall(
            r'http_requests_total\{method="\w+",route="/graphql",status="\d+"\} (\S+)', text
        )
        counts.append(int(sum(float(value) for value in found)))
    return counts


async def served_by(stack: ScaledStack, request: Awaitable[T]) -> tuple[T, int]:
    """Run one GraphQL request through nginx (nothing else may run meanwhile); its result and
    the replica that answered it."""
    before = await asyncio.to_thread(graphql_requests, stack)
    result = await request

    def grown() -> list[int]:
        replicas = [
            index
            for index, (old, new) in enumerate(zip(before, graphql_requests(stack), strict=True))
            if new > old
        ]
        assert len(replicas) <= 1, "another request reached the APIs"
        return replicas

    # The counter moves just after the answer is sent.
    [replica] = await asyncio.to_thread(wait_until, grown, 5, what="a replica to count it")
    return result, replica


def accepted_sockets(stack: ScaledStack) -> list[int]:
    return [stack.log(replica).count(WS_ACCEPTED) for replica in range(API_REPLICAS)]


# -- talking to the stack --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def subscribed(
    stack: ScaledStack, token: str, viewer: str, after: str | None = None
) -> AsyncIterator[tuple[ClientConnection, int]]:
    """feedUpdates over a WebSocket through nginx, registered (the viewer's presence key
    exists); yields the socket and the replica that accepted it."""
    before = accepted_sockets(stack)
    url = f"ws://{LOOPBACK}:{stack.ports.public}/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as socket:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await socket.send(json.dumps(init))
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "connection_ack"
        payload = {"query": SUBSCRIBE, "variables": {"after": after}}
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        [replica] = await asyncio.to_thread(
            wait_until, lambda: _newly_accepted(stack, before), 10, what="the socket's replica"
        )
        feed_redis = open_feed_redis(stack.settings())
        try:
            key = presence_key(parse_user_global_id(viewer))
            async with asyncio.timeout(10):
                while not await feed_redis.exists(key):
                    await asyncio.sleep(0.02)
        finally:
            await feed_redis.aclose()
        yield socket, replica


def _newly_accepted(stack: ScaledStack, before: list[int]) -> list[int]:
    """The replicas that accepted a socket since `before` (wait_until wants a truthy value)."""
    now = accepted_sockets(stack)
    return [replica for replica, (b, a) in enumerate(zip(before, now, strict=True)) if a > b]


async def follower_and_author(
    client: httpx.AsyncClient, follower: str, author: str
) -> tuple[str, str, str]:
    """Sign both up, `follower` follows `author`: the follower's token and id, the author's
    token."""
    follower_token, follower_id = await sign_up(client, follower)
    author_token, author_id = await sign_up(client, author)
    await gql(client, FOLLOW, {"id": author_id}, token=follower_token)
    return follower_token, follower_id, author_token


async def next_tweet(socket: ClientConnection) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 20))
        if message["type"] == "next":
            assert "errors" not in message["payload"], message
            return message["payload"]["data"]["feedUpdates"]
        assert message["type"] in {"ping", "pong"}, message


def fanout_idle(stack: ScaledStack) -> None:
    settings = stack.settings()
    wait_until(lambda: queues_idle(settings, ("fanout",)), 30, what="fan-out to finish")


# -- the scenarios ---------------------------------------------------------------------------


async def test_sign_up_follow_tweet_an_image_and_read_the_feed_on_the_other_replica(
    scaled: ScaledStack,
) -> None:
    async with httpx.AsyncClient(base_url=scaled.url, timeout=30) as client:
        ann, _ = await sign_up(client, "ann")
        bob, bob_id = await sign_up(client, "bob")
        await gql(client, FOLLOW, {"id": bob_id}, token=ann)

        image = jpeg_with_gps()
        variables = {"type": "image/jpeg", "size": len(image)}
        ticket = (await gql(client, CREATE_MEDIA_UPLOAD, variables, token=bob))["createMediaUpload"]
        # Presigned for the S3 server itself: the bytes never pass through nginx or an API.
        s3 = f"http://{LOOPBACK}:{scaled.ports.s3}/{MEDIA_BUCKET}/"
        assert ticket["uploadUrl"].startswith(s3)
        async with httpx.AsyncClient(timeout=30) as plain:
            headers = {"Content-Type": "image/jpeg"}
            assert (
                await plain.put(ticket["uploadUrl"], content=image, headers=headers)
            ).status_code == 200

        posted, writer = await served_by(
            scaled, tweet(client, bob, "a photo", media=[ticket["id"]])
        )
        [media] = posted["media"]
        assert media["url"].startswith(f"{scaled.url}/{MEDIA_BUCKET}/public/")

        # ann reads her feed until the replica that did not take the tweet has served it.
        deadline = time.monotonic() + 30
        while True:
            texts, reader = await served_by(scaled, read_feed(client, ann))
            if reader != writer and "a photo" in texts:
                break
            assert time.monotonic() < deadline, "the other replica never served the tweet"
            await asyncio.sleep(0.1)

        # The image through the CDN route: fetched from S3 once, then from nginx's cache.
        first = await client.get(media["url"])
        second = await client.get(media["url"])
    assert first.status_code == second.status_code == 200
    assert (first.headers["x-cache-status"], second.headers["x-cache-status"]) == ("MISS", "HIT")
    assert first.content == second.content and first.content[:2] == b"\xff\xd8"  # a JPEG
    assert 0x8825 not in exif_of(first.content)  # re-encoded without its GPS block
    assert all(count > 0 for count in graphql_requests(scaled))


async def test_a_subscriber_on_one_replica_gets_a_tweet_posted_through_the_other(
    scaled: ScaledStack,
) -> None:
    async with httpx.AsyncClient(base_url=scaled.url, timeout=30) as client:
        cy, cy_id, dee = await follower_and_author(client, "cy", "dee")
        async with subscribed(scaled, cy, cy_id) as (socket, listening):
            # nginx picks the replica: post until one tweet went through the other one.
            for attempt in range(10):
                _, writer = await served_by(scaled, tweet(client, dee, f"live {attempt}"))
                update = await next_tweet(socket)
                assert update["tweet"] == {"text": f"live {attempt}", "author": {"username": "dee"}}
                if writer != listening:
                    break
            else:
                raise AssertionError("nginx sent every tweet to the subscriber's replica")


class Load:
    """Clients reading ann's feed through nginx as fast as they can, LOAD_CLIENTS with GET and
    as many with POST; every answer that is not a 200 without errors is counted as a failure."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.headers = {
            "Authorization": f"Bearer {token}"
        }  # no micro-cache: every read is upstream
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.stop = asyncio.Event()
        self.tasks = [
            asyncio.create_task(self._client(method))
            for method in ("GET", "POST")
            for _ in range(LOAD_CLIENTS)
        ]

    async def _client(self, method: str) -> None:
        query = {"query": FEED, "variables": {"first": 10}}
        async with httpx.AsyncClient(base_url=self.url, timeout=10, headers=self.headers) as http:
            while not self.stop.is_set():
                try:
                    if method == "GET":
                        params = {"query": FEED, "variables": json.dumps({"first": 10})}
                        response = await http.get("/graphql", params=params)
                    else:
                        response = await http.post("/graphql", json=query)
                    good = response.status_code == 200 and "errors" not in response.json()
                    outcome = "ok" if good else f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                self.outcomes[(method, outcome)] += 1

    async def finish(self) -> Counter[tuple[str, str]]:
        self.stop.set()
        await asyncio.gather(*self.tasks)
        return self.outcomes

    def failures(self, method: str) -> int:
        return sum(
            n for (m, outcome), n in self.outcomes.items() if m == method and outcome != "ok"
        )


def api_pid(stack: ScaledStack, replica: int) -> int | None:
    """The running process of one API replica (WEB_CONCURRENCY=1: one process)."""
    marker = f"PORT={stack.ports.apis[replica]}".encode()
    for pid in descendants(stack.process.pid):
        if "-m web.serve" in command_line(pid):
            with contextlib.suppress(OSError):
                if marker in (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0"):
                    return pid
    return None


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def test_kill_an_api_replica_nginx_routes_around_it_and_its_subscriber_resumes(
    scaled: ScaledStack,
) -> None:
    async with httpx.AsyncClient(base_url=scaled.url, timeout=30) as client:
        eve, eve_id, fay = await follower_and_author(client, "eve", "fay")
        async with subscribed(scaled, eve, eve_id) as (socket, doomed):
            await tweet(client, fay, "before the kill")
            seen = await next_tweet(socket)
            assert seen["tweet"]["text"] == "before the kill"
            cursor = seen["cursor"]
            victim = api_pid(scaled, doomed)
            assert victim is not None

            load = Load(scaled.url, eve)
            await asyncio.sleep(1)
            os.kill(victim, signal.SIGKILL)
            with pytest.raises(ConnectionClosed):  # nginx drops the client's side too
                await next_tweet(socket)
        # Posted while eve is away, through nginx: only the survivor can take them.
        for text in ("while away 1", "while away 2"):
            await tweet(client, fay, text)
        await asyncio.sleep(1)
        outcomes = await load.finish()
        print(f"\nrequests through nginx around the kill: {dict(outcomes)}")
        await asyncio.to_thread(fanout_idle, scaled)

        async with subscribed(scaled, eve, eve_id, after=cursor) as (socket, survivor):
            assert survivor != doomed
            replayed = [(await next_tweet(socket))["tweet"]["text"] for _ in range(2)]
            assert replayed == ["while away 1", "while away 2"]
            await tweet(client, fay, "after the reconnect")
            assert (await next_tweet(socket))["tweet"]["text"] == "after the reconnect"

    # An idempotent GET in flight on the dead replica is retried on the other one
    # (proxy_next_upstream): no client sees an error. A POST is not retried once it was sent,
    # so at most the POSTs in flight on that replica at the kill fail (one per POST client).
    assert load.failures("GET") == 0, outcomes
    assert load.failures("POST") <= LOAD_CLIENTS, outcomes
    assert outcomes[("GET", "ok")] > 0 and outcomes[("POST", "ok")] > 0
    # The supervisor restarts the dead replica.
    await asyncio.to_thread(
        wait_until, lambda: healthy(scaled.api_url(doomed)), 60, what="the replica's restart"
    )
    assert f"api-{doomed + 1} was killed by SIGKILL" in scaled.said()
    assert f"restarting the api-{doomed + 1}" in scaled.said()


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def test_kill_the_supervisor_and_nothing_of_the_stack_survives(scaled: ScaledStack) -> None:
    """Last: it ends the module's stack."""
    stack = descendants(scaled.process.pid)
    assert (
        len(stack) >= 20
    )  # 12 cluster nodes, broker, 2 graph servers, S3, 2 APIs, 2 workers, nginx
    scaled.process.kill()
    scaled.process.wait(10)
    wait_for_exit(scaled.var_dir, 30)
    wait_until(
        lambda: not any(alive(pid) for pid in stack), 30, what="the stack's processes to die"
    )
    taken = [(port, what) for port, what in scaled.ports.named() if not port_free(port)]
    assert not taken, taken
