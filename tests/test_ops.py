"""Ops endpoints and the offline GraphiQL page, over HTTP against the real app."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from pathlib import Path

import httpx

from devstack.servers import free_port, start_redis
from settings import Settings
from tests.gql import gql, gql_error, sign_up
from tests.replicas import Node, wait_caught_up
from tests.servers import serve_api

ROOT = Path(__file__).resolve().parent.parent


async def test_healthz_and_metrics(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"graph": "ok", "redis": "ok"})
    await sign_up(client, "alice")
    metrics = (await client.get("/metrics")).text
    assert re.search(
        r'http_requests_total\{method="POST",route="/graphql",status="200"\} 1\.0', metrics
    )
    assert 'http_request_duration_seconds_count{route="/healthz"} 1.0' in metrics


async def test_metrics_are_for_the_operator_only(settings: Settings) -> None:
    """Production: /metrics wants METRICS_TOKEN as a bearer token, and is off without one."""
    token = "operator-scrape-token"
    with serve_api(replace(settings, app_env="production", metrics_token=token)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            assert (await client.get("/metrics")).status_code == 401
            wrong = await client.get("/metrics", headers={"Authorization": "Bearer guess"})
            assert wrong.status_code == 401
            right = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert right.status_code == 200 and "http_requests_total" in right.text
    with serve_api(replace(settings, app_env="production")) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            assert (await client.get("/metrics")).status_code == 404


def test_public_nginx_server_does_not_forward_metrics() -> None:
    conf = (ROOT / "deploy" / "nginx" / "default.conf.template").read_text()
    public = conf[conf.index("server {") :]
    assert re.search(r"location\s+(\^~|=)\s*/metrics\s*\{\s*return\s+404;", public), public


async def test_graph_outage_is_reported_not_crashed(settings: Settings, tmp_path) -> None:
    """Stop the graph server under a running app: coded errors and 503, then recovery."""
    port = free_port()
    graph = start_redis("graph", port, tmp_path / "graph", falkordb=True)
    outage_settings = replace(
        settings, falkordb_url=f"redis://127.0.0.1:{port}", graph_timeout_seconds=1.0
    )
    try:
        with serve_api(outage_settings) as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                await sign_up(client, "alice")
                graph.kill()
                assert (await client.get("/healthz")).status_code == 503
                query = '{ user(username: "alice") { followersCount } }'
                assert (await gql_error(client, query))[0] == "SERVICE_UNAVAILABLE"
                graph = start_redis("graph", port, tmp_path / "graph", falkordb=True)
                await wait_for_health(client)
                data = await gql(client, query)
                assert data == {"user": {"followersCount": 0}}
    finally:
        graph.stop()


async def wait_for_health(client: httpx.AsyncClient) -> None:
    async with asyncio.timeout(10):
        while (await client.get("/healthz")).status_code != 200:
            await asyncio.sleep(0.05)


async def test_graphiql_page_and_assets_are_served_locally(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(src.startswith("/static/graphiql/") for src in sources)
    for src in sources:
        asset = await client.get(src)
        assert asset.status_code == 200 and len(asset.content) > 1000, src


async def test_redis_replication_lag_is_exported_per_role_and_master(
    settings: Settings, documents_pair: tuple[Node, Node]
) -> None:
    """The documents role on a primary with a replica: its lag (bytes, >= 0) is on /metrics; the
    feed role's server has no replica: -1."""
    primary, replica = documents_pair
    wait_caught_up(primary, replica)
    documents_on_pair = replace(settings, documents_redis_url=primary.url)
    with serve_api(documents_on_pair) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            await sign_up(client, "alice")  # something to replicate
            metrics = (await client.get("/metrics")).text
    gauge = r'redis_replica_lag_bytes\{master="([^"]+)",role="(\w+)"\} (-?[\d.]+)'
    lags = {(role, master): float(value) for master, role, value in re.findall(gauge, metrics)}
    assert lags[("documents", f"127.0.0.1:{primary.port}")] >= 0
    assert [lag for (role, _), lag in lags.items() if role == "feeds"] == [-1]
