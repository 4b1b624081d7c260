"""`make run-scaled` (python -m devstack.scaled), started once for this module, spoken to the way
clients reach it: through nginx, which balances over the two API replicas.

The tests run in file order. The failover tests kill -9 a server under load and wait until the
supervisor has it back: the first master of the documents cluster (no acknowledged tweet lost,
errors coded and only until the promotion, none for the other shards), of the feeds cluster
(feeds complete afterwards, fan-out goes on), the graph replica (reads fall back to the primary
without an error). The last ones break the stack on purpose: kill -9 of one API replica (nginx
routes around it, its subscriber reconnects to the other and resumes from its cursor), then
kill -9 of the supervisor (nothing of the stack survives).

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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import redis
from redis.cluster import RedisCluster
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from devstack.scaled import API_REPLICAS, MEDIA_BUCKET, Ports, stack_env
from devstack.servers import LOOPBACK, free_port, free_port_between
from resolvers.ids import parse_tweet_global_id, parse_user_global_id, user_global_id
from settings import Settings
from storage.feeds import feed_key
from storage.tweets import timeline_key, tweet_key
from tests.gql import (
    CREATE_MEDIA_UPLOAD,
    CREATE_TWEET,
    FEED,
    FOLLOW,
    all_pages,
    gql,
    read_feed,
    sign_up,
    tweet,
)
from tests.images import exif_of, jpeg_with_gps
from tests.servers import ROOT, queues_idle, wait_until
from tests.test_devstack import alive, command_line, descendants, wait_for_exit
from tests.test_nginx_cache import require_nginx
from tests.test_subscriptions import wait_subscribed

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
        await wait_subscribed(stack.settings(), viewer)
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


# -- failover: a master of either Redis Cluster, the graph replica -----------------------------
#
# These run before the API-replica and supervisor kills below. Each kills one server with
# SIGKILL while clients keep using the stack through nginx, measures what they saw, and waits
# until the supervisor has the server back (a cluster node rejoins as its promoted replica's
# replica), so the stack is whole again for the next test.

PROMOTION_BOUND = 15.0  # seconds from the kill until the replica serves the slots (~5 s)
REJOIN_BOUND = 25.0  # ...until the restarted node replicates its new master (~6 s)
# After a milestone (promotion for reads, the rejoin for durable writes) clients may still meet
# the tail of the outage for this long: an API's slot map is refreshed by its next failure.
SETTLE_SECONDS = 2.0
AFTER_RECOVERY_SECONDS = 2.0  # the load keeps going this long after the outage, error-free
RETRY_PAUSE_SECONDS = 0.2  # a writer's pause before sending a failed createTweet again
GRAPH_FALLBACK_SECONDS = 2.0  # graph reads under load right after the replica's kill

TIMELINE_IDS = """
query($u: String!, $first: Int!, $after: String) {
  user(username: $u) {
    tweets(first: $first, after: $after) {
      edges { node { id text } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
FEED_TEXTS = "{ feed(first: 50) { edges { node { text } } } }"
TWEET_BY_ID = "query($id: ID!) { tweet(id: $id) { id text } }"
GRAPH_READS = """
query($u: String!) {
  user(username: $u) {
    followersCount followingCount
    followers(first: 10) { edges { node { username } } }
    following(first: 10) { edges { node { username } } }
  }
  whoToFollow(first: 5) { user { username } mutualFollowers }
}
"""


def outcome_of(response: httpx.Response) -> tuple[str, dict | None]:
    """("ok", the data), or (what went wrong: the first error's code, else the status, None)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}", None
    errors = body.get("errors") if isinstance(body, dict) else None
    if response.status_code == 200 and not errors:
        return "ok", body["data"]
    code = ((errors or [{}])[0].get("extensions") or {}).get("code")
    return code or f"HTTP {response.status_code} without a code", None


@dataclass
class Probe:
    """One client through nginx repeating a request until told to stop: when each answer came
    (time.monotonic()) and what it was."""

    name: str
    outcomes: list[tuple[float, str]]

    def failures(self, since: float = float("-inf")) -> list[tuple[float, str]]:
        return [(at, what) for at, what in self.outcomes if what != "ok" and at >= since]

    def summary(self, kill: float) -> str:
        bad = self.failures()
        span = f"{bad[0][0] - kill:+.1f}..{bad[-1][0] - kill:+.1f} s" if bad else "-"
        kinds = dict(Counter(what for _, what in bad))
        return f"{self.name}: {len(self.outcomes)} requests, {len(bad)} failed {kinds} ({span})"


async def keep_reading(
    url: str,
    probe: Probe,
    stop: asyncio.Event,
    query: str,
    variables: dict,
    token: str | None,
    expect: dict | None = None,
) -> None:
    """Send the query until `stop`, noting each outcome in `probe` (a 200 whose data is not
    `expect`, when given, as "wrong answer")."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=url, timeout=15, headers=headers) as http:
        while not stop.is_set():
            try:
                response = await http.post(
                    "/graphql", json={"query": query, "variables": variables}
                )
                outcome, data = outcome_of(response)
                if data is not None and expect is not None and data != expect:
                    outcome = "wrong answer"
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            probe.outcomes.append((time.monotonic(), outcome))
            await asyncio.sleep(0.02)


@dataclass
class Writer(Probe):
    """A client posting tweets `<name> 0`, `<name> 1`, ... each with its own idempotencyKey,
    sending a failed one again with the same key until it is acknowledged (or `deadline`)."""

    token: str = ""
    acked: list[tuple[str, str]] = field(default_factory=list)  # (tweet id, text), in order

    async def run(self, url: str, stop: asyncio.Event, deadline: float) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(base_url=url, timeout=15, headers=headers) as http:
            number = 0
            while not stop.is_set():
                text, key = f"{self.name} {number}", f"{self.name}-{number}"
                variables = {"text": text, "key": key}
                while time.monotonic() < deadline:
                    try:
                        response = await http.post(
                            "/graphql", json={"query": CREATE_TWEET, "variables": variables}
                        )
                        outcome, data = outcome_of(response)
                    except httpx.HTTPError as exc:
                        outcome, data = type(exc).__name__, None
                    self.outcomes.append((time.monotonic(), outcome))
                    if data is not None:
                        self.acked.append((data["createTweet"]["id"], text))
                        break
                    await asyncio.sleep(RETRY_PAUSE_SECONDS)
                number += 1


def cluster_client(port: int) -> redis.Redis:
    return redis.Redis(host=LOOPBACK, port=port, socket_timeout=2)


def slot_owner(ports: list[int], key: str) -> int | None:
    """The port of the master serving `key`'s slot, as the first node that answers says."""
    for port in ports:
        client = cluster_client(port)
        try:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            for low, high, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if low <= slot <= high:
                    return int(master[1])
            return None
        except redis.RedisError:
            continue  # dead, or still loading
        finally:
            client.close()
    return None


def replicating(port: int) -> bool:
    """Whether the server on `port` is a replica with its link to its master up."""
    client = cluster_client(port)
    try:
        info = client.info("replication")
    except redis.RedisError:
        return False
    finally:
        client.close()
    return info["role"] == "slave" and info.get("master_link_status") == "up"


def server_pid(stack: ScaledStack, port: int) -> int:
    """The redis-server of the stack listening on `port` (its process title names it:
    `redis-server 127.0.0.1:<port> [cluster]`)."""
    address = f"{LOOPBACK}:{port}"
    [pid] = [
        pid
        for pid in descendants(stack.process.pid)
        if "redis-server" in command_line(pid) and address in command_line(pid).split()
    ]
    return pid


@dataclass
class Failover:
    """When a killed cluster master's replica took over its slots and when the master, started
    again by the supervisor, was replicating its old replica (seconds after the kill)."""

    killed_at: float
    promoted: float
    rejoined: float


async def kill_master(
    stack: ScaledStack,
    ports: list[int],
    victim: int,
    what: str,
    then: Callable[[], object] = lambda: None,
) -> Failover:
    """SIGKILL the master on port `victim` of the cluster on `ports`, call `then()`, and return
    once its replica serves its slots and it, restarted, replicates that replica."""
    key = next(  # one in the victim's slots, whose new owner tells when the failover is done
        candidate
        for candidate in (f"{{{number}}}" for number in range(100))
        if slot_owner(ports, candidate) == victim
    )
    peers = [port for port in ports if port != victim]
    pid = server_pid(stack, victim)
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    then()

    def promoted() -> int | None:
        owner = slot_owner(peers, key)
        return owner if owner not in (None, victim) else None

    await asyncio.to_thread(wait_until, promoted, PROMOTION_BOUND, 0.05, f"{what}: a promotion")
    promoted_at = time.monotonic()
    await asyncio.to_thread(
        wait_until, lambda: replicating(victim), REJOIN_BOUND, 0.05, f"{what}: the old master back"
    )
    failover = Failover(killed_at, promoted_at - killed_at, time.monotonic() - killed_at)
    print(
        f"\n{what}: master on port {victim} killed; replica serving its slots after "
        f"{failover.promoted:.1f} s, old master replicating it after {failover.rejoined:.1f} s"
    )
    return failover


async def users_on_and_off(
    client: httpx.AsyncClient,
    prefix: str,
    ports: list[int],
    victim: int,
    key_of: Callable[[int], str],
    each: int,
) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    """Sign up users `<prefix>0`, `<prefix>1`, ... until `each` have key_of(id) on the master
    on port `victim` and `each` elsewhere: both lists of (username, token, id)."""
    on: list[tuple[str, str, int]] = []
    off: list[tuple[str, str, int]] = []
    for number in range(60):
        username = f"{prefix}{number}"
        token, global_id = await sign_up(client, username)
        user_id = parse_user_global_id(global_id)
        side = on if slot_owner(ports, key_of(user_id)) == victim else off
        if len(side) < each:
            side.append((username, token, user_id))
        if len(on) == len(off) == each:
            return on, off
    raise AssertionError("could not place users on both sides")


def first_master(ports: list[int]) -> int:
    """The cluster's node the app's URL names (the first), a master: the node redis-py asks
    first and sends keyless commands to, the worst one to lose."""
    client = cluster_client(ports[0])
    try:
        assert client.info("replication")["role"] == "master"
    finally:
        client.close()
    return ports[0]


async def timeline(client: httpx.AsyncClient, username: str) -> list[tuple[str, str]]:
    """(id, text) of every tweet on the user's timeline, newest first."""
    nodes = await all_pages(client, TIMELINE_IDS, {"u": username, "first": 100}, _tweets_of)
    return [(node["id"], node["text"]) for node in nodes]


def _tweets_of(data: dict) -> dict:
    return data["user"]["tweets"]


@pytest.mark.usefixtures("graph_users")  # made now, used by the graph replica's test
async def test_kill_a_documents_master_under_write_load_loses_no_acknowledged_tweet(
    scaled: ScaledStack,
) -> None:
    """Writers post (each tweet with its idempotencyKey, resent after an error), readers read a
    feed and a timeline, while the master of some writers' shard is killed."""
    ports = scaled.ports.documents
    async with httpx.AsyncClient(base_url=scaled.url, timeout=30) as client:
        victim = first_master(ports)
        on, off = await users_on_and_off(client, "doc", ports, victim, timeline_key, 2)
        reader_token, _ = await sign_up(client, "docreader")
        for _, _, user_id in on + off:
            await gql(client, FOLLOW, {"id": user_global_id(user_id)}, token=reader_token)
        stop, deadline = asyncio.Event(), time.monotonic() + PROMOTION_BOUND + REJOIN_BOUND + 30
        writers = [Writer(name, [], token=token) for name, token, _ in on + off]
        readers = [
            Probe("feed reader", []),
            Probe(f"timeline reader of {on[0][0]}", []),
        ]
        tasks = [asyncio.create_task(w.run(scaled.url, stop, deadline)) for w in writers]
        tasks += [
            asyncio.create_task(
                keep_reading(scaled.url, readers[0], stop, FEED_TEXTS, {}, reader_token)
            ),
            asyncio.create_task(
                keep_reading(
                    scaled.url, readers[1], stop, TIMELINE_IDS, {"u": on[0][0], "first": 5}, None
                )
            ),
        ]
        try:
            await asyncio.sleep(1)
            failover = await kill_master(scaled, ports, victim, "documents cluster")
            await asyncio.sleep(AFTER_RECOVERY_SECONDS + SETTLE_SECONDS)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        kill = failover.killed_at
        for probe in [*writers, *readers]:
            print(probe.summary(kill))

        # Errors are the coded kind a client retries, and only while the shard is in trouble:
        # reads until its replica serves, writes to it until that replica has a replica again.
        for probe in [*writers, *readers]:
            assert {what for _, what in probe.failures()} <= {"SERVICE_UNAVAILABLE"}, probe
            assert all(at > kill for at, _ in probe.failures()), probe
        for probe in readers:
            assert not probe.failures(kill + failover.promoted + SETTLE_SECONDS), probe
        for writer in writers[: len(on)]:
            assert not writer.failures(kill + failover.rejoined + SETTLE_SECONDS), writer
        for writer in writers[len(on) :]:  # the other shards never stopped
            assert not writer.failures(), writer
        for probe in [*writers, *readers]:
            assert any(
                at > kill + failover.rejoined and what == "ok" for at, what in probe.outcomes
            )

        # No acknowledged tweet is lost, and none was posted twice: each author's timeline is
        # exactly what they were told was posted, newest first; each is readable by id.
        for writer in writers:
            assert writer.acked, writer.name
            assert await timeline(client, writer.name) == writer.acked[::-1], writer.name
            for tweet_id, text in writer.acked:
                found = (await gql(client, TWEET_BY_ID, {"id": tweet_id}))["tweet"]
                assert found == {"id": tweet_id, "text": text}
        # And in the cluster itself (past every API's cache): the documents of the killed
        # shard's authors are on the promoted replica.
        documents = RedisCluster(host=LOOPBACK, port=ports[0])
        try:
            for writer, (_, _, author_id) in zip(writers, on + off, strict=True):
                refs = [parse_tweet_global_id(tweet_id) for tweet_id, _ in writer.acked]
                assert all(author == author_id for author, _ in refs)
                raws = documents.mget_nonatomic([tweet_key(a, t) for a, t in refs])
                texts = [json.loads(raw)["text"] for raw in raws]
                assert texts == [text for _, text in writer.acked]
        finally:
            documents.close()


async def test_kill_a_feeds_master_feeds_stay_right_and_fan_out_goes_on(
    scaled: ScaledStack,
) -> None:
    """Followers with feeds on the killed master's shard and elsewhere keep reading while the
    author posts; afterwards every feed holds every tweet, newest first."""
    ports = scaled.ports.feeds
    async with httpx.AsyncClient(base_url=scaled.url, timeout=30) as client:
        victim = first_master(ports)
        on, off = await users_on_and_off(client, "feeder", ports, victim, feed_key, 1)
        followers = on + off
        author_token, author_id = await sign_up(client, "feedauthor")
        for _, token, _ in followers:
            await gql(client, FOLLOW, {"id": author_id}, token=token)
            assert await read_feed(client, token) == []  # built: the follower is active
        before = [f"feedauthor early {number}" for number in range(3)]
        for text in before:
            await tweet(client, author_token, text)
        await asyncio.to_thread(fanout_idle, scaled)
        for _, token, _ in followers:
            assert await read_feed(client, token) == before[::-1]
        # Pushes landing on a master just before it dies may be lost with it (replication is
        # asynchronous; README): let the replica have them first, so the test can demand them.
        await asyncio.to_thread(wait_until, lambda: caught_up(victim), 10, 0.05, "the replica")

        stop, deadline = asyncio.Event(), time.monotonic() + PROMOTION_BOUND + REJOIN_BOUND + 30
        readers = [Probe(f"feed reader {name}", []) for name, _, _ in followers]
        tasks = [
            asyncio.create_task(keep_reading(scaled.url, probe, stop, FEED_TEXTS, {}, token))
            for probe, (_, token, _) in zip(readers, followers, strict=True)
        ]
        writer = Writer("feedauthor", [], token=author_token)
        try:
            await asyncio.sleep(1)
            failover = await kill_master(
                scaled,
                ports,
                victim,
                "feeds cluster",
                # posting starts after the kill: its pushes meet the outage, none races it
                then=lambda: tasks.append(
                    asyncio.create_task(writer.run(scaled.url, stop, deadline))
                ),
            )
            await asyncio.sleep(AFTER_RECOVERY_SECONDS + SETTLE_SECONDS)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        kill = failover.killed_at
        for probe in [*readers, writer]:
            print(probe.summary(kill))
        for probe in [*readers, writer]:
            assert {what for _, what in probe.failures()} <= {"SERVICE_UNAVAILABLE"}, probe
            assert not probe.failures(kill + failover.promoted + SETTLE_SECONDS), probe
        assert not readers[1].failures()  # the other shards' feeds never stopped

        # Fan-out delivered what was posted during the outage (retried until the shard was
        # back); every follower's feed holds each tweet once, newest first.
        await asyncio.to_thread(fanout_idle, scaled)
        posted = before + [text for _, text in writer.acked]
        assert len(posted) > len(before)
        for _, token, _ in followers:
            assert await read_feed(client, token) == posted[::-1]


def caught_up(port: int) -> bool:
    """Whether the master on `port` has a replica that has processed all it was sent."""
    client = cluster_client(port)
    try:
        info = client.info("replication")
    finally:
        client.close()
    replica = info.get("slave0")
    return isinstance(replica, dict) and int(replica["offset"]) >= int(info["master_repl_offset"])


def graph_queries(port: int) -> int:
    """GRAPH.RO_QUERY calls the FalkorDB server on `port` has answered (0 if it is down)."""
    client = cluster_client(port)
    try:
        stats = client.info("commandstats")
    except redis.RedisError:
        return 0
    finally:
        client.close()
    # named `cmdstat_graph.RO_QUERY` by FalkorDB 4.16; matched whatever the case
    return sum(
        int(stat["calls"])
        for name, stat in stats.items()
        if name.lower() == "cmdstat_graph.ro_query"
    )


@dataclass(frozen=True)
class GraphUsers:
    """`viewer` follows `left` and `right`, who both follow `shared` (in that order)."""

    viewer_token: str
    expected: dict  # what GRAPH_READS about `shared` answers the viewer


@pytest.fixture(scope="module")
async def graph_users(scaled: ScaledStack) -> GraphUsers:
    """Made early (the first failover test asks for it) so that by the graph replica's test
    the follows are older than FALKORDB_REPLICA_FRESH_MS: reads about these users then go to
    the replica, as reads about anyone's follows but one's own recent ones do."""
    async with httpx.AsyncClient(base_url=scaled.url, timeout=30) as client:
        viewer, _ = await sign_up(client, "grviewer")
        tokens, ids = {}, {}
        for name in ("grleft", "grright", "grshared"):
            tokens[name], ids[name] = await sign_up(client, name)
        for name in ("grleft", "grright"):
            await gql(client, FOLLOW, {"id": ids[name]}, token=viewer)
            await gql(client, FOLLOW, {"id": ids["grshared"]}, token=tokens[name])
    expected = {
        "user": {
            "followersCount": 2,
            "followingCount": 0,
            "followers": {"edges": [{"node": {"username": n}} for n in ("grright", "grleft")]},
            "following": {"edges": []},
        },
        "whoToFollow": [{"user": {"username": "grshared"}, "mutualFollowers": 2}],
    }
    return GraphUsers(viewer, expected)


async def test_kill_the_graph_replica_graph_reads_fall_back_to_the_primary(
    scaled: ScaledStack, graph_users: GraphUsers
) -> None:
    ports = scaled.ports
    variables = {"u": "grshared"}

    async def served_by_replica() -> bool:
        before = graph_queries(ports.graph_replica)
        answer = await gql(client, GRAPH_READS, variables, token=graph_users.viewer_token)
        assert answer == graph_users.expected
        return graph_queries(ports.graph_replica) > before

    async with httpx.AsyncClient(base_url=scaled.url, timeout=30) as client:
        deadline = time.monotonic() + 15  # FALKORDB_REPLICA_FRESH_MS at most, if made just now
        while not await served_by_replica():
            assert time.monotonic() < deadline, "the replica never answered these reads"
            await asyncio.sleep(0.2)

        stop = asyncio.Event()
        readers = [Probe(f"graph reader {number}", []) for number in range(3)]
        primary_before = graph_queries(ports.graph)
        pid = server_pid(scaled, ports.graph_replica)
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        tasks = [
            asyncio.create_task(
                keep_reading(
                    scaled.url,
                    probe,
                    stop,
                    GRAPH_READS,
                    variables,
                    graph_users.viewer_token,
                    expect=graph_users.expected,
                )
            )
            for probe in readers
        ]
        try:
            await asyncio.sleep(GRAPH_FALLBACK_SECONDS)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        for probe in readers:
            print(probe.summary(killed_at))
            assert probe.outcomes and not probe.failures(), probe
        assert graph_queries(ports.graph) > primary_before  # the primary answered them

        # The supervisor starts the replica again; once it has synced, reads return to it.
        await asyncio.to_thread(
            wait_until, lambda: replicating(ports.graph_replica), 30, 0.1, "the replica's sync"
        )
        deadline = time.monotonic() + 15  # FALKORDB_REPLICA_RETRY_SECONDS, then the next read
        while not await served_by_replica():
            assert time.monotonic() < deadline, "reads never returned to the replica"
            await asyncio.sleep(0.2)
        print(
            f"graph replica: reads back on it {time.monotonic() - killed_at:.1f} s after the kill"
        )


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
