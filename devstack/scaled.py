"""`python -m devstack.scaled` (`make run-scaled`): the production topology on one machine, in the
foreground until Ctrl-C (or SIGTERM).

Everything binds to loopback and keeps its data under VAR_DIR (default ./var/scaled):

- documents: a Redis Cluster of 3 masters + 3 replicas (AOF, `noeviction`);
- feeds: a second 3 + 3 Redis Cluster (`volatile-lru`, listpack-sized sorted sets, no
  persistence: feeds are rebuilt) when the settings know FEED_REDIS_CLUSTER, else one server;
- the job broker: one Redis (AOF, `noeviction`);
- the graph: FalkorDB primary + one replica (REPLICAOF), which serves graph lists and fan-out;
- media: moto's S3 server (in memory) behind nginx's pull cache;
- two API processes (`python -m web.serve`, one uvicorn process each) and two workers
  (`python -m fanout --processes 1 --threads 4`);
- nginx (deploy/nginx/default.conf.template) as the public server: balancer over both APIs
  (HTTP and WebSocket), GraphQL micro-cache, and pull CDN for /media/.

PORT (default 8080) is nginx's port; every other server takes a port in SCALED_BASE_PORT
(default 7000) + 0..31 (see `Ports`). Settings are checked and every port is tested before
anything starts. An API or worker that exits is restarted with backoff (nginx routes around an
API meanwhile); so is the graph replica (graph reads go to the primary meanwhile) and a cluster
node, once its replica has taken over its slots (devstack/cluster.py); any other server exiting
stops the stack. Every child dies with the supervisor.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.cluster import start_cluster
from devstack.nginx import nginx_binary, start_nginx
from devstack.servers import (
    FEED_REDIS_OPTIONS,
    LOOPBACK,
    ManagedProcess,
    PortInUse,
    require_free,
    start_redis,
    start_s3_server,
    wait_for_http,
    wait_for_replication,
)
from devstack.supervisor import (
    ROOT,
    api_process,
    jwt_secret,
    port_setting,
    refuse,
    run_stack,
    worker_process,
)
from fanout.queues import VIDEO_QUEUES
from settings import Settings, SettingsError

API_REPLICAS = 2
WORKERS = 2
WORKER_THREADS = 4
VIDEO_WORKERS = 1  # `python -m fanout --queues video`: one processing child at a time each
VIDEO_WORKER_THREADS = 1
CLUSTER_NODES = 6  # per cluster: 3 masters, each with one replica
CLUSTER_MASTERS = 3
# The bucket is the first segment of a media path: nginx passes /media/<key> to the S3 server
# as it is, so CDN_BASE_URL=<public>/media names objects of the bucket "media".
MEDIA_BUCKET = "media"
# The feed role on a cluster needs the app to support it: until settings.py has the flag, feeds
# live on one server.
FEEDS_ON_CLUSTER = "FEED_REDIS_CLUSTER" in Settings.names()
STARTUP_SECONDS = 60.0  # for each API, the S3 server, each cluster to come up


@dataclass(frozen=True)
class Ports:
    """Where everything listens: nginx on `public`, the rest at fixed offsets from `base`."""

    public: int
    base: int

    SPAN = 32  # base .. base + 31

    @property
    def documents(self) -> list[int]:
        return [self.base + index for index in range(CLUSTER_NODES)]

    @property
    def feeds(self) -> list[int]:
        """The feed cluster's nodes (the first alone when feeds are on one server)."""
        return [self.base + CLUSTER_NODES + index for index in range(CLUSTER_NODES)]

    @property
    def broker(self) -> int:
        return self.base + 12

    @property
    def graph(self) -> int:
        return self.base + 13

    @property
    def graph_replica(self) -> int:
        return self.base + 14

    @property
    def s3(self) -> int:
        return self.base + 15

    @property
    def apis(self) -> list[int]:
        return [self.base + 16 + index for index in range(API_REPLICAS)]

    BUS_OFFSET = 20  # a cluster node's bus port: its port + 20 (base + 20 .. base + 31)

    def bus(self, ports: list[int]) -> list[int]:
        """The cluster bus ports of these cluster nodes."""
        return [port + self.BUS_OFFSET for port in ports]

    def named(self) -> list[tuple[int, str]]:
        """Every port the stack listens on, with what listens there."""
        named = [(self.public, "nginx, PORT")]
        for port, bus in zip(self.documents, self.bus(self.documents), strict=True):
            named += [(port, "documents cluster"), (bus, "documents cluster bus")]
        feed_ports = self.feeds if FEEDS_ON_CLUSTER else self.feeds[:1]
        for port, bus in zip(feed_ports, self.bus(feed_ports), strict=True):
            named.append((port, "feeds"))
            if FEEDS_ON_CLUSTER:
                named.append((bus, "feeds cluster bus"))
        named += [
            (self.broker, "broker"),
            (self.graph, "FalkorDB"),
            (self.graph_replica, "FalkorDB replica"),
            (self.s3, "S3 server"),
        ]
        named += [(port, f"api-{index}") for index, port in enumerate(self.apis, 1)]
        return named

    def check(self) -> None:
        """SettingsError if the ports overlap or run out, PortInUse naming one that is taken."""
        if self.base + self.SPAN - 1 > 65535:
            raise SettingsError(
                f"SCALED_BASE_PORT: the stack needs ports {self.base}-{self.base + self.SPAN - 1}"
            )
        if self.base <= self.public < self.base + self.SPAN:
            raise SettingsError(
                f"PORT: {self.public} is inside SCALED_BASE_PORT's range "
                f"{self.base}-{self.base + self.SPAN - 1}"
            )
        for port, what in self.named():
            require_free(port, what)


def ports_from_env() -> Ports:
    return Ports(public=port_setting("PORT", 8080), base=port_setting("SCALED_BASE_PORT", 7000))


def redis_url(port: int) -> str:
    return f"redis://{LOOPBACK}:{port}/0"


def stack_env(ports: Ports, var_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of the workers (the APIs add their own PORT): `environ` with every
    address of the stack set over it."""
    public_url = f"http://{LOOPBACK}:{ports.public}"
    feeds = {"FEED_REDIS_URL": redis_url(ports.feeds[0])}
    if FEEDS_ON_CLUSTER:
        feeds["FEED_REDIS_CLUSTER"] = "true"
    return {
        "APP_ENV": "development",  # development limits; a variable that is set still wins
        **environ,
        "HOST": LOOPBACK,
        "WEB_CONCURRENCY": "1",  # one process per API replica: nginx balances over them
        "GRAPH_BACKEND": "falkordb",
        "FALKORDB_URL": f"redis://{LOOPBACK}:{ports.graph}",
        # graph lists, counts and fan-out's follower pages from the replica (the acting user's
        # own reads stay on the primary for a while after their follow: see README)
        "FALKORDB_REPLICA_URL": f"redis://{LOOPBACK}:{ports.graph_replica}",
        # a createTweet is acknowledged once its shard's replica has it (WAIT, bounded)
        "TWEET_DURABLE_REPLICAS": "1",
        "DOCUMENTS_REDIS_URL": redis_url(ports.documents[0]),
        "DOCUMENTS_REDIS_CLUSTER": "true",
        **feeds,
        "BROKER_REDIS_URL": redis_url(ports.broker),
        "JWT_SECRET": jwt_secret(var_dir),
        "MEDIA_BACKEND": "s3",
        "S3_ENDPOINT": f"{LOOPBACK}:{ports.s3}",
        "S3_ACCESS_KEY": "scaled-stack",  # moto accepts any key
        "S3_SECRET_KEY": "scaled-stack-secret",
        "S3_BUCKET": MEDIA_BUCKET,
        "S3_SECURE": "false",
        "PUBLIC_API_URL": public_url,
        "CDN_BASE_URL": f"{public_url}/{MEDIA_BUCKET}",
        # nginx overwrites X-Forwarded-For with the client's address: believe it from nginx only
        "TRUSTED_PROXIES": LOOPBACK,
    }


def api_env(env: Mapping[str, str], port: int) -> dict[str, str]:
    return {**env, "PORT": str(port)}


def main() -> int:
    var_dir = Path(os.environ.get("VAR_DIR", ROOT / "var" / "scaled")).resolve()
    if nginx_binary() is None:
        print("devstack: the scaled stack needs nginx (apt-get install nginx)", file=sys.stderr)
        return 2
    try:
        ports = ports_from_env()
        ports.check()
        var_dir.mkdir(parents=True, exist_ok=True)
        env = stack_env(ports, var_dir, os.environ)
        for port in ports.apis:  # what the workers and the APIs will read: fail here, not there
            Settings.from_env(api_env(env, port))
    except (SettingsError, PortInUse) as exc:
        return refuse(exc)

    def start(children: list[ManagedProcess]) -> list[ManagedProcess]:
        logs = var_dir / "logs"
        logs.mkdir(exist_ok=True)
        start_cluster(
            "documents",
            ports.documents,
            ports.bus(ports.documents),
            var_dir / "documents",
            children=children,
            masters=CLUSTER_MASTERS,
            extra=["--maxmemory-policy", "noeviction"],
            timeout=STARTUP_SECONDS,
        )
        # Feeds are rebuilt from timelines and the graph: no persistence; only feed keys carry
        # a TTL, so only they are evicted.
        feed_options = ["--maxmemory-policy", "volatile-lru", *FEED_REDIS_OPTIONS]
        if FEEDS_ON_CLUSTER:
            start_cluster(
                "feeds",
                ports.feeds,
                ports.bus(ports.feeds),
                var_dir / "feeds",
                children=children,
                masters=CLUSTER_MASTERS,
                appendonly=False,
                extra=feed_options,
                timeout=STARTUP_SECONDS,
            )
        else:
            children.append(
                start_redis(
                    "feeds", ports.feeds[0], var_dir / "feeds", appendonly=False, extra=feed_options
                )
            )
        noeviction = ["--maxmemory-policy", "noeviction"]
        children.append(start_redis("broker", ports.broker, var_dir / "broker", extra=noeviction))
        children.append(start_redis("graph", ports.graph, var_dir / "graph", falkordb=True))
        replica = start_redis(
            "graph-replica",
            ports.graph_replica,
            var_dir / "graph-replica",
            falkordb=True,
            extra=["--replicaof", LOOPBACK, str(ports.graph)],
        )
        # Graph reads fall back to the primary while it is down (graph/falkordb_store.py).
        replica.restart_when = restart_any_time
        children.append(replica)
        wait_for_replication(replica, ports.graph_replica, STARTUP_SECONDS)
        children.append(start_s3_server(ports.s3, logs / "s3.log", timeout=STARTUP_SECONDS))
        replaceable = []
        for index, port in enumerate(ports.apis, 1):
            api = api_process(f"api-{index}", api_env(env, port), logs)
            children.append(api)
            replaceable.append(api)
            # One at a time: the first creates the media bucket, which the next then finds.
            wait_for_http(api, f"http://{LOOPBACK}:{port}/healthz", STARTUP_SECONDS)
        for index in range(1, WORKERS + 1):
            worker = worker_process(f"worker-{index}", env, logs, threads=WORKER_THREADS)
            children.append(worker)
            replaceable.append(worker)
        for index in range(1, VIDEO_WORKERS + 1):
            worker = worker_process(
                f"video-worker-{index}",
                env,
                logs,
                threads=VIDEO_WORKER_THREADS,
                queues=VIDEO_QUEUES,
            )
            children.append(worker)
            replaceable.append(worker)
        children.append(
            start_nginx(
                var_dir / "nginx",
                port=ports.public,
                api_addresses=[f"{LOOPBACK}:{port}" for port in ports.apis],
                media_origin=f"http://{LOOPBACK}:{ports.s3}",
            )
        )
        print(announcement(ports, var_dir), flush=True)
        return replaceable

    return run_stack(start, var_dir)


def restart_any_time(seconds_dead: float) -> bool:
    """A server the stack does without until it is back (after the supervisor's backoff)."""
    return True


def announcement(ports: Ports, var_dir: Path) -> str:
    public_url = f"http://{LOOPBACK}:{ports.public}"
    apis = " and ".join(f"{LOOPBACK}:{port}" for port in ports.apis)
    feeds = "a 3+3 Redis Cluster" if FEEDS_ON_CLUSTER else "one Redis server"
    return (
        f"devstack: scaled stack at {public_url}/graphql (nginx balancing APIs at {apis}; "
        f"media through the CDN at {public_url}/{MEDIA_BUCKET}/; feeds on {feeds})\n"
        f"devstack: logs in {var_dir / 'logs'} (APIs, workers, S3), {var_dir / 'nginx'} "
        f"(access.log, error.log) and each Redis server's server.log in its data directory "
        f"under {var_dir}; Ctrl-C stops everything"
    )


if __name__ == "__main__":
    sys.exit(main())
