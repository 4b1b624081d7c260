"""`make run` as a newcomer runs it: starts, serves, keeps data across a restart, stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import httpx

from devstack.servers import LOOPBACK, free_port
from tests.gql import LOG_IN, PASSWORD, SIGN_UP
from tests.servers import ROOT, wait_until


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


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Stack:
    def __init__(self, var_dir: Path) -> None:
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
        self.url = f"http://{LOOPBACK}:{self.port}"

    def start(self) -> subprocess.Popen:
        # Own process group, so SIGINT to it is what Ctrl-C in a terminal sends.
        return subprocess.Popen(
            ["make", "--no-print-directory", "run"],
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
