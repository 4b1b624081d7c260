"""docker-compose.yml cannot run here; at least it must parse, agree with settings.py, and describe
the topology the scaled stack (devstack/scaled.py, `make run-scaled`) runs."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import yaml

from devstack.cluster import CLUSTER_OPTIONS, NODE_TIMEOUT_MS
from devstack.nginx import TEMPLATE, placeholders, render
from devstack.scaled import (
    API_REPLICAS,
    CLUSTER_MASTERS,
    CLUSTER_NODES,
    MEDIA_BUCKET,
    VIDEO_WORKER_THREADS,
    VIDEO_WORKERS,
    WORKER_THREADS,
    WORKERS,
)
from devstack.servers import FEED_REDIS_OPTIONS
from fanout.actors import declare_actors
from fanout.broker import build_broker
from fanout.queues import GENERAL_QUEUES, VIDEO_QUEUES
from settings import Settings
from social.fanout import FanOut
from web.serve import KEEP_ALIVE_SECONDS

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_ADDRESSES = {"CDN_BASE_URL", "PUBLIC_API_URL"}  # what clients reach, not a backend


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def app_services(services: dict) -> dict[str, dict]:
    """The services built from this repository (the API and the workers)."""
    return {name: service for name, service in services.items() if service.get("build") == "."}


def test_app_environment_uses_only_real_settings() -> None:
    apps = app_services(compose()["services"])
    assert set(apps) == {"app", "worker", "video-worker"}
    for name, service in apps.items():
        unknown = set(service["environment"]) - Settings.names()
        assert not unknown, f"{name} sets variables settings.py does not read: {unknown}"


def test_every_backend_the_settings_point_at_is_a_service() -> None:
    services = compose()["services"]
    for name, service in app_services(services).items():
        env = service["environment"]
        for key, value in env.items():
            if key.endswith(("_URL", "_URI")) and key not in PUBLIC_ADDRESSES:
                host = urlparse(value).hostname
                assert host in services, f"{name}: {key} points at {host}, not a service"
        assert env["GRAPH_BACKEND"] == "falkordb"
        assert env["S3_ENDPOINT"].split(":")[0] in services
        for dependency in service.get("depends_on", {}):
            assert dependency in services


def command_options(service: dict) -> dict[str, str]:
    """A redis-server command line's options as {name: value}."""
    command = service["command"]
    assert command[0] == "redis-server"
    return dict(zip(command[1::2], command[2::2], strict=True))


def cluster_nodes(services: dict, prefix: str) -> dict[str, dict]:
    return {
        name: service
        for name, service in services.items()
        if name.startswith(prefix) and "--cluster-enabled" in service.get("command", [])
    }


def test_documents_and_feeds_each_on_a_cluster_with_replicas() -> None:
    """As in the scaled stack: 3 masters + 3 replicas per role, formed by a one-shot service
    from the nodes' fixed addresses, the app told that both roles are clusters."""
    services = compose()["services"]
    env = services["app"]["environment"]
    init = services["redis-cluster-init"]
    init_command = " ".join(init["command"])
    assert "--cluster create" in init_command and "--cluster-replicas 1" in init_command
    assert CLUSTER_NODES == 2 * CLUSTER_MASTERS  # one replica per master, both places
    roles = {
        "redis-docs-": ("DOCUMENTS_REDIS_URL", "DOCUMENTS_REDIS_CLUSTER", "DOCUMENTS_NODES"),
        "redis-feeds-": ("FEED_REDIS_URL", "FEED_REDIS_CLUSTER", "FEEDS_NODES"),
    }
    for prefix, (url, flag, init_list) in roles.items():
        nodes = cluster_nodes(services, prefix)
        assert len(nodes) == CLUSTER_NODES, prefix
        assert env[flag] == "true" and flag in Settings.names()
        assert urlparse(env[url]).hostname in nodes
        addresses = {
            f"{node['networks']['default']['ipv4_address']}:6379" for node in nodes.values()
        }
        assert set(init["environment"][init_list].split()) == addresses
        assert set(nodes) <= set(init["depends_on"])
        cluster_options = dict(zip(CLUSTER_OPTIONS[::2], CLUSTER_OPTIONS[1::2], strict=True))
        for node in nodes.values():  # a dead master is failed over as in the scaled stack
            assert command_options(node)["--cluster-node-timeout"] == str(NODE_TIMEOUT_MS)
            assert cluster_options.items() <= command_options(node).items()
    for node in cluster_nodes(services, "redis-docs-").values():
        options = command_options(node)
        assert (options["--maxmemory-policy"], options["--appendonly"]) == ("noeviction", "yes")
    feed_options = dict(zip(FEED_REDIS_OPTIONS[::2], FEED_REDIS_OPTIONS[1::2], strict=True))
    for node in cluster_nodes(services, "redis-feeds-").values():
        options = command_options(node)
        assert options["--maxmemory-policy"] == "volatile-lru"
        assert feed_options.items() <= options.items()
    for name in app_services(services):
        assert services[name]["depends_on"]["redis-cluster-init"] == {
            "condition": "service_completed_successfully"
        }


def test_broker_graph_replica_and_media_as_in_the_scaled_stack() -> None:
    services = compose()["services"]
    env = services["app"]["environment"]
    broker = services[urlparse(env["BROKER_REDIS_URL"]).hostname]
    options = command_options(broker)
    assert (options["--maxmemory-policy"], options["--appendonly"]) == ("noeviction", "yes")
    primary = urlparse(env["FALKORDB_URL"]).hostname
    assert "falkordb" in services[primary]["image"]
    replica = services["falkordb-replica"]
    assert services[primary]["image"] == replica["image"]
    assert f"--replicaof {primary} 6379" in replica["environment"]["REDIS_ARGS"]
    # Reads go to that replica, and tweets wait for their shard's replica, as in the scaled stack.
    assert urlparse(env["FALKORDB_REPLICA_URL"]).hostname == "falkordb-replica"
    assert env["TWEET_DURABLE_REPLICAS"] == "1"
    assert env["MEDIA_BACKEND"] == "s3" and env["S3_BUCKET"] == MEDIA_BUCKET
    assert env["CDN_BASE_URL"].endswith(f"/{MEDIA_BUCKET}")
    assert f"local/{MEDIA_BUCKET}" in " ".join(services["minio-init"]["command"])


def test_as_many_api_replicas_and_workers_as_the_scaled_stack() -> None:
    """Two API replicas and two single-process workers with the same threads, everywhere. One
    documented difference: an app replica runs WEB_CONCURRENCY API processes (unset: one per
    core of its host), the scaled stack one per replica."""
    services = compose()["services"]
    assert services["app"]["deploy"]["replicas"] == API_REPLICAS
    assert "WEB_CONCURRENCY" not in services["app"]["environment"]
    for name, replicas, threads, queues in (
        ("worker", WORKERS, WORKER_THREADS, GENERAL_QUEUES),
        ("video-worker", VIDEO_WORKERS, VIDEO_WORKER_THREADS, VIDEO_QUEUES),
    ):
        worker = services[name]
        assert worker["deploy"]["replicas"] == replicas
        command = worker["command"]
        assert command[:3] == ["python", "-m", "fanout"]
        at = command.index("--queues")
        options = dict(zip(command[3:at:2], command[4:at:2], strict=True))
        assert options == {"--processes": "1", "--threads": str(threads)}
        assert tuple(command[at + 1 :]) == queues


def test_the_worker_kinds_consume_every_queue_once() -> None:
    """Every queue an actor declares is consumed by exactly one kind of worker."""
    broker = build_broker(Settings.from_env({"APP_ENV": "development"}))
    try:
        declare_actors(broker, _never_run)
        declared = set(broker.get_declared_queues())
    finally:
        broker.close()
    assert declared == set(GENERAL_QUEUES) | set(VIDEO_QUEUES)
    assert not set(GENERAL_QUEUES) & set(VIDEO_QUEUES)


async def _never_run() -> FanOut:
    raise AssertionError("no actor runs here")


def test_nginx_gets_the_shipped_template_and_every_value_it_needs() -> None:
    """The image renders /etc/nginx/templates/*.template with envsubst, which leaves a
    placeholder it has no variable for as it is: every one must be set on the service."""
    nginx = compose()["services"]["nginx"]
    mount = f"./{TEMPLATE.relative_to(ROOT)}:/etc/nginx/templates/{TEMPLATE.name}:ro"
    assert mount in nginx["volumes"]
    needed = placeholders(TEMPLATE.read_text())
    assert needed == set(nginx["environment"]), needed ^ set(nginx["environment"])
    rendered = render(TEMPLATE.read_text(), nginx["environment"])
    assert "server app:8000 resolve;" in rendered and "${" not in rendered
    assert urlparse(nginx["environment"]["MEDIA_ORIGIN"]).hostname == "minio"


def test_every_long_running_service_is_restarted_and_one_shots_are_not() -> None:
    """A crashed node, worker or API replica comes back (a cluster node rejoins as a replica, as
    the scaled stack restarts them); the one-shot init jobs run once."""
    for name, service in compose()["services"].items():
        one_shot = name.endswith("-init")
        assert service.get("restart") == ("no" if one_shot else "unless-stopped"), name


def test_nginx_closes_idle_api_connections_before_the_api_does() -> None:
    """A request nginx sends on a kept-alive connection the API is closing fails (a 502 for a
    POST, which nginx does not retry): nginx must let idle connections go first."""
    [upstream] = re.findall(r"^upstream api \{(.*?)^\}", TEMPLATE.read_text(), re.DOTALL | re.M)
    [seconds] = re.findall(r"^\s*keepalive_timeout (\d+)s;", upstream, re.MULTILINE)
    assert 0 < int(seconds) < KEEP_ALIVE_SECONDS
