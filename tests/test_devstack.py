"""`make run` as a newcomer runs it: starts, serves, keeps data across a restart, stops cleanly,
says what is wrong when it cannot, and survives its worker crashing."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devstack.servers import LOOPBACK, free_port
from fanout.queues import GENERAL_QUEUES
from graph.factory import open_graph
from resolvers.ids import parse_tweet_global_id, parse_user_global_id
from settings import Settings
from storage.fanout_stats import FanoutStats
from storage.feeds import FeedRef, open_feed_cache
from tests.gql import LOG_IN, PASSWORD, SIGN_UP, sign_up, tweet
from tests.servers import ROOT, wait_until
from tests.test_faults import feeds_holding

MAKE_RUN = ["make", "--no-print-directory", "run"]
DEVSTACK = [sys.executable, "-m", "devstack"]  # what `make run` runs, without make above it


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def processes_of(var_dir: Path) -> set[int]:
    """Every live process started with this VAR_DIR: whatever a stack started, however deep,
    even if it was reparented."""
    marker = f"VAR_DIR={var_dir}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0"):
                found.add(int(entry.name))
        except OSError:
            continue
    return {pid for pid in found if alive(pid)}


def wait_for_exit(var_dir: Path, timeout: float) -> None:
    """Wait until no process of the stack under `var_dir` is alive; fail naming the survivors
    (and kill them, so that a failure leaves nothing behind)."""
    deadline = time.monotonic() + timeout
    while survivors := processes_of(var_dir):
        if time.monotonic() > deadline:
            named = [command_line(pid) for pid in survivors]
            for pid in survivors:
                os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"still running after {timeout:g} s: {named}")
        time.sleep(0.1)


class Stack:
    def __init__(self, var_dir: Path, **settings: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "VAR_DIR": str(var_dir),
            "PORT": str(self.port),
            "DEVSTACK_REDIS_PORT": str(free_port()),
            "DEVSTACK_GRAPH_PORT": str(free_port()),
            # cheap hashing keeps the test fast; the stack is otherwise exactly `make run`
            "ARGON2_TIME_COST": "1",
            "ARGON2_MEMORY_KIB": "8",
            "ARGON2_PARALLELISM": "1",
        }
        self.env.pop("JWT_SECRET", None)
        self.env.update(settings)
        self.url = f"http://{LOOPBACK}:{self.port}"

    def start(self, command: list[str] = MAKE_RUN) -> subprocess.Popen:
        # Own process group, so SIGINT to it is what Ctrl-C in a terminal sends.
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def graphql(self, query: str, variables: dict) -> dict:
        body = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=30
        ).json()
        assert "errors" not in body, body
        return body["data"]


def ctrl_c(process: subprocess.Popen) -> str:
    """Send SIGINT to the group, wait for a clean exit, return the output."""
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    return output


def test_make_run_serves_persists_and_stops_cleanly(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "var")
    first = stack.start()
    try:
        wait_until(stack.healthy, timeout=90, what="make run to serve /healthz")
        children = descendants(first.pid)
        variables = {"username": "Newcomer", "password": PASSWORD, "displayName": "New"}
        user_id = stack.graphql(SIGN_UP, variables)["signUp"]["user"]["id"]
    finally:
        output = ctrl_c(first)
    assert "GraphiQL at" in output and "stopped" in output
    assert len(children) >= 4  # graph server, redis, worker (+ its processes), API
    assert not [pid for pid in children if alive(pid)], output

    second = stack.start()
    try:
        wait_until(stack.healthy, timeout=90, what="make run to come back")
        session = stack.graphql(LOG_IN, {"username": "newcomer", "password": PASSWORD})
        assert session["logIn"]["user"]["id"] == user_id
    finally:
        ctrl_c(second)


def test_make_run_explains_a_busy_port(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "var")
    with socket.socket() as holder:
        holder.bind((LOOPBACK, stack.port))
        holder.listen()
        process = stack.start()
        output, _ = process.communicate(timeout=60)
    assert process.returncode != 0
    assert f"port {stack.port} (API) is already in use" in output


@pytest.mark.parametrize(
    ("name", "value"),
    [("PORT", "abc"), ("MAX_PAGE_SIZE", "abc"), ("JWT_SECRET", "too short"), ("RATE_TWEETS", "x")],
)
def test_a_bad_setting_is_named_before_anything_starts(
    tmp_path: Path, name: str, value: str
) -> None:
    stack = Stack(tmp_path / "var", **{name: value})
    output, _ = stack.start(DEVSTACK).communicate(timeout=60)
    assert f"devstack: bad setting: {name}" in output
    assert "Traceback" not in output
    assert not (tmp_path / "var" / "logs").exists()  # no child was started


def test_a_failing_child_has_its_error_printed(tmp_path: Path) -> None:
    # Passes the settings check; the API then fails at start-up: the data Redis is no cluster.
    stack = Stack(tmp_path / "var", DOCUMENTS_REDIS_CLUSTER="true")
    process = stack.start(DEVSTACK)
    output, _ = process.communicate(timeout=90)
    assert process.returncode == 1
    assert "api exited with 3" in output
    assert "Cluster mode is not enabled" in output  # the API's own words, from var/logs/api.log


def fanout_parent(supervisor: int) -> int | None:
    """The general `python -m fanout` process (the one consuming the fan-out queue, not the
    video worker) the supervisor runs now, once its worker process is up."""
    for pid in descendants(supervisor):
        argv = command_line(pid).split()
        general = "--queues" in argv and argv[argv.index("--queues") + 1 :] == list(GENERAL_QUEUES)
        if general and descendants(pid):
            return pid
    return None


async def test_worker_parent_killed_leaves_no_orphan_and_its_messages_are_delivered(
    tmp_path: Path,
) -> None:
    """kill -9 of `python -m fanout`: its worker process dies with it, the supervisor starts a
    new worker, which delivers the fan-out the dead one held; then kill -9 of the supervisor
    leaves no process of the stack behind."""
    audience = 5_000
    stack = Stack(
        tmp_path / "var",
        # a dead worker's messages come back within about a second (see tests/test_faults.py)
        BROKER_HEARTBEAT_TIMEOUT_MS="1000",
        BROKER_MAINTENANCE_CHANCE="1000000",
        FANOUT_BATCH_SIZE="10",  # 500 delivery messages: plenty still queued when it dies
    )
    settings = Settings.from_env(
        {
            "FALKORDB_URL": f"redis://{LOOPBACK}:{stack.env['DEVSTACK_GRAPH_PORT']}",
            "FEED_REDIS_URL": f"redis://{LOOPBACK}:{stack.env['DEVSTACK_REDIS_PORT']}/0",
            "APP_ENV": "development",
        }
    )
    graph = open_graph(settings)
    feeds = open_feed_cache(settings)
    stats = FanoutStats(feeds.client)
    supervisor = stack.start(DEVSTACK)
    try:
        await asyncio.to_thread(wait_until, stack.healthy, 90, what="the stack to serve")
        async with httpx.AsyncClient(base_url=stack.url, timeout=60) as client:
            token, author_gid = await sign_up(client, "author")
            author = parse_user_global_id(author_gid)
            followers = list(range(10**15, 10**15 + audience))
            await graph.bulk_create_users([(f, f"f{f}") for f in followers])
            await graph.bulk_follow([(f, author, 1) for f in followers])
            await feeds.create_empty(followers)  # all active
            first = await asyncio.to_thread(
                wait_until, lambda: fanout_parent(supervisor.pid), 60, what="the worker"
            )
            held_by_first = descendants(first)

            _, tweet_id = parse_tweet_global_id((await tweet(client, token, "to all"))["id"])
            async with asyncio.timeout(60):
                while len(await stats.batches_of(tweet_id)) < 3:
                    await asyncio.sleep(0.01)
            os.kill(first, signal.SIGKILL)  # mid fan-out
            assert len(await stats.batches_of(tweet_id)) < audience // 10, "finished too soon"
            await asyncio.to_thread(
                wait_until,
                lambda: not any(alive(pid) for pid in held_by_first),
                30,
                what="the killed worker's processes to die",
            )
            second = await asyncio.to_thread(
                wait_until,
                lambda: (pid := fanout_parent(supervisor.pid)) != first and pid,
                60,
                what="the supervisor to restart the worker",
            )
            assert second != first
            ref = FeedRef(tweet_id, author)
            async with asyncio.timeout(90):
                while await feeds_holding(feeds.client, followers, ref) < audience:
                    await asyncio.sleep(0.2)

        supervisor.kill()
        output, _ = supervisor.communicate(timeout=10)
        assert "devstack: worker was killed by SIGKILL" in output
        assert "restarting the worker" in output
        await asyncio.to_thread(wait_for_exit, tmp_path / "var", 30)
    finally:
        if supervisor.poll() is None:
            ctrl_c(supervisor)
        await graph.close()
        await feeds.client.aclose()
