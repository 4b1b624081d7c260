"""A Redis Cluster of local servers: masters holding the 16,384 slots in equal ranges, each with
its replicas, formed the way an operator would (CLUSTER MEET, CLUSTER ADDSLOTSRANGE on the
masters, CLUSTER REPLICATE on the replicas).

Every node keeps its cluster configuration (nodes.conf) in its data directory, so a cluster
started again from the same directories re-forms by itself (roles as they were last: a promoted
replica stays a master); it is only formed here when every node is blank.

A node that dies is started again by the supervisor once no live node names it as the master of
any slot (its replica took over), so it rejoins as that replica's replica; never earlier: a
master without persistence (the feed cluster) would come back empty and still in charge of its
slots, and its replica would copy the empty data set. If nobody takes over (its replica is dead
too), it is started anyway after NODE_RESTART_LATEST_SECONDS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import redis

from devstack.servers import LOOPBACK, ManagedProcess, ServerFailedToStart, start_redis

SLOTS = 16_384
NODE_TIMEOUT_MS = 3_000  # a master unreachable this long is failed over to its replica
# Every node of both clusters (compose's too, tests/test_deploy_config.py checks):
CLUSTER_OPTIONS = (
    # A shard whose master is down (until its replica takes over, ~5 s) stops only its own
    # slots: every multi-key call stays within one slot, so the other shards keep serving.
    "--cluster-require-full-coverage", "no",
    # A node rejoining after a failover needs a full copy from its new master: start sending it
    # at once rather than waiting 5 s for other replicas to share the transfer (one each here).
    "--repl-diskless-sync-delay", "0",
)  # fmt: skip
NODE_RESTART_LATEST_SECONDS = 30.0  # a dead master nobody took over from is restarted anyway


def slot_ranges(masters: int) -> list[tuple[int, int]]:
    """`masters` contiguous, nearly equal slot ranges covering all slots (inclusive bounds)."""
    bounds = [SLOTS * index // masters for index in range(masters + 1)]
    return [(bounds[index], bounds[index + 1] - 1) for index in range(masters)]


def start_cluster(
    name: str,
    ports: Sequence[int],
    bus_ports: Sequence[int],
    data_dir: Path,
    *,
    children: list[ManagedProcess],
    masters: int = 3,
    appendonly: bool = True,
    extra: Sequence[str] = (),
    timeout: float = 60.0,
) -> None:
    """Start one redis-server per port (the first `masters` become masters, the others, if any,
    their replicas in turn), each in data_dir/node<i>, appended to `children` as it starts; form the
    cluster if it is new, and return once every node says `cluster_state:ok` and every replica's
    link to its master is up."""
    if len(ports) < masters or len(ports) % masters or len(bus_ports) != len(ports):
        raise ValueError("expected as many replicas (or none) per master, and a bus port each")
    for index, (port, bus_port) in enumerate(zip(ports, bus_ports, strict=True)):
        options = [
            "--cluster-enabled", "yes",
            "--cluster-port", str(bus_port),
            "--cluster-config-file", "nodes.conf",  # in its own --dir
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            *CLUSTER_OPTIONS,
        ]  # fmt: skip
        node = start_redis(
            f"{name}-{index}",
            port,
            data_dir / f"node{index}",
            appendonly=appendonly,
            extra=[*options, *extra],
        )
        peers = [other for other in ports if other != port]
        node.restart_when = partial(_may_restart, port, peers)
        children.append(node)
    clients = [redis.Redis(host=LOOPBACK, port=port, socket_timeout=5) for port in ports]
    try:
        known = [int(client.cluster("info")["cluster_known_nodes"]) for client in clients]
        if all(count == 1 for count in known):
            _form(clients, ports, bus_ports, masters, timeout)
        elif any(count != len(ports) for count in known):
            raise ServerFailedToStart(
                f"the {name} cluster in {data_dir} is neither new nor whole (nodes know "
                f"{known} nodes; ports changed since it was formed?): delete {data_dir} to form "
                f"it afresh"
            )
        _wait(lambda: _healthy(clients, len(ports) - masters), timeout, f"the {name} cluster")
    finally:
        for client in clients:
            client.close()


def _form(
    clients: list[redis.Redis],
    ports: Sequence[int],
    bus_ports: Sequence[int],
    masters: int,
    timeout: float,
) -> None:
    for port, bus_port in zip(ports[1:], bus_ports[1:], strict=True):
        # The bus port must be named: MEET would otherwise assume port + 10000.
        clients[0].execute_command("CLUSTER", "MEET", LOOPBACK, port, bus_port)
    everyone = len(clients)
    _wait(
        lambda: all(int(c.cluster("info")["cluster_known_nodes"]) == everyone for c in clients),
        timeout,
        "the cluster's nodes to meet",
    )
    for client, (low, high) in zip(clients[:masters], slot_ranges(masters), strict=True):
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
    master_ids = [clients[index].execute_command("CLUSTER", "MYID") for index in range(masters)]
    for index, replica in enumerate(clients[masters:]):
        master_id = master_ids[index % masters]
        # A node may not yet have heard that its master holds slots; it then refuses for a while.
        _wait(partial(_replicate, replica, master_id), timeout, "a replica to accept its master")


def _replicate(replica: redis.Redis, master_id: bytes) -> bool:
    try:
        replica.execute_command("CLUSTER", "REPLICATE", master_id)
    except redis.ResponseError:
        return False
    return True


def _healthy(clients: list[redis.Redis], replicas: int) -> bool:
    """Every node agrees the cluster is ok with every slot served (with full coverage not
    required, "ok" alone does not say so), and `replicas` nodes replicate with their link up."""
    linked = 0
    for client in clients:
        info = client.cluster("info")
        if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != SLOTS:
            return False
        replication = client.info("replication")
        if replication["role"] == "slave" and replication.get("master_link_status") == "up":
            linked += 1
    return linked == replicas


def _may_restart(port: int, peers: Sequence[int], seconds_dead: float) -> bool:
    """Whether the dead node on `port` may start again: no peer that answers names it as the
    master of any slot (a replica, or a master whose replica took over), or it has been dead
    for NODE_RESTART_LATEST_SECONDS."""
    if seconds_dead >= NODE_RESTART_LATEST_SECONDS:
        return True
    for peer in peers:
        client = redis.Redis(host=LOOPBACK, port=peer, socket_timeout=0.5)
        try:
            ranges = client.execute_command("CLUSTER", "SLOTS")
        except redis.RedisError:
            continue  # dead or busy: ask another
        finally:
            client.close()
        # [low, high, [host, port, id, ...] of the master, then the replicas] per range
        return all(int(master[1]) != port for _, _, master, *_ in ranges)
    return False


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise ServerFailedToStart(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)
