"""Primary + replica pairs of redis-server for the replica and durability tests."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from devstack.servers import LOOPBACK, ManagedProcess, free_port, start_redis


@dataclass
class Node:
    """One redis-server process of a pair (`process` is a devstack ManagedProcess)."""

    process: ManagedProcess
    port: int

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host=LOOPBACK, port=self.port, decode_responses=True)


def start_node(base: Path, name: str, *, falkordb: bool, primary: Node | None = None) -> Node:
    """A loopback redis-server (with the FalkorDB module if asked); with `primary`, a replica of
    it, returned once its link is up (the initial synchronisation is done)."""
    port = free_port()
    # A primary starts a replica's full synchronisation at once (the default waits 5 s for more
    # replicas to share it).
    extra = ["--repl-diskless-sync-delay", "0"]
    if primary is not None:
        extra += ["--replicaof", LOOPBACK, str(primary.port)]
    process = start_redis(name, port, base / name, falkordb=falkordb, appendonly=False, extra=extra)
    node = Node(process, port)
    if primary is not None:
        wait_link_up(node)
    return node


def wait_link_up(replica: Node, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    with replica.client() as client:
        while client.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not sync"
            time.sleep(0.02)


def wait_caught_up(primary: Node, replica: Node, timeout: float = 20.0) -> None:
    """Until the replica has processed everything the primary has sent so far."""
    deadline = time.monotonic() + timeout
    with primary.client() as p, replica.client() as r:
        target = p.info("replication")["master_repl_offset"]
        while r.info("replication").get("slave_repl_offset", -1) < target:
            assert time.monotonic() < deadline, "the replica did not catch up"
            time.sleep(0.02)


def calls(node: Node, command: str) -> int:
    """How many times the server ran `command` (INFO commandstats), e.g. 'wait' or
    'graph.RO_QUERY' (module commands keep their case)."""
    with node.client() as client:
        stats = client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


@contextmanager
def stopped(node: Node) -> Iterator[None]:
    """The server frozen with SIGSTOP (it holds its connections but answers nothing, as a hung
    or partitioned node does), resumed with SIGCONT on the way out."""
    pid = node.process.pid
    os.killpg(pid, signal.SIGSTOP)  # its own process group: the server and nothing else
    try:
        yield
    finally:
        os.killpg(pid, signal.SIGCONT)
