"""The shipped nginx configuration (deploy/nginx/default.conf.template, rendered by
devstack/nginx.py) in front of the real API: anonymous public reads are served from the
micro-cache, a request with a token never is, and a stampede on a cold key reaches the API once.

Skipped with the reason printed when nginx is not installed, unless REQUIRE_NGINX=1 (as in
.ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlparse

import httpx
import pytest

from devstack.nginx import nginx_binary, start_nginx
from devstack.servers import LOOPBACK, free_port
from settings import Settings
from tests.gql import VIEWER, sign_up

PUBLIC_QUERY = '{ user(username: "ann") { username followersCount } }'
STAMPEDE = 50


def require_nginx() -> None:
    if nginx_binary():
        return
    reason = "no nginx (apt-get install nginx)"
    if os.environ.get("REQUIRE_NGINX") == "1":
        pytest.fail(f"REQUIRE_NGINX=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture
def nginx_url(api_url: str, tmp_path) -> Iterator[str]:
    """nginx on a free loopback port, balancing to the test's API server."""
    require_nginx()
    port = free_port()
    process = start_nginx(
        tmp_path / "nginx",
        port=port,
        api_addresses=[urlparse(api_url).netloc],
        media_origin=api_url,
    )
    yield f"http://{LOOPBACK}:{port}"
    process.stop()


async def graphql_gets_seen_by_api(api_url: str) -> int:
    """GET /graphql requests the API answered (its own counter, read past nginx)."""
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        metrics = (await client.get("/metrics")).text
    found = re.search(
        r'http_requests_total\{method="GET",route="/graphql",status="200"\} (\d+)', metrics
    )
    return int(found.group(1)) if found else 0


async def test_anonymous_public_read_is_served_from_the_cache(nginx_url: str, api_url: str) -> None:
    async with httpx.AsyncClient(base_url=nginx_url, timeout=30) as client:
        await sign_up(client, "ann")  # a POST: through nginx, never cached
        first = await client.get("/graphql", params={"query": PUBLIC_QUERY})
        second = await client.get("/graphql", params={"query": PUBLIC_QUERY})
    assert first.json() == {"data": {"user": {"username": "ann", "followersCount": 0}}}
    assert (first.headers["x-cache-status"], second.headers["x-cache-status"]) == ("MISS", "HIT")
    assert second.json() == first.json()
    assert second.headers["cache-control"] == "public, max-age=5"
    assert await graphql_gets_seen_by_api(api_url) == 1


async def test_a_request_with_a_token_never_reads_nor_fills_the_cache(
    nginx_url: str, api_url: str
) -> None:
    async with httpx.AsyncClient(base_url=nginx_url, timeout=30) as client:
        token, _ = await sign_up(client, "ann")
        signed_in = {"Authorization": f"Bearer {token}"}
        params = {"query": PUBLIC_QUERY}
        for _ in range(2):
            response = await client.get("/graphql", params=params, headers=signed_in)
            assert response.headers["x-cache-status"] == "BYPASS"
            assert response.headers["cache-control"] == "no-store"
        anonymous = await client.get("/graphql", params=params)
        assert anonymous.headers["x-cache-status"] == "MISS"  # the signed-in answers were not kept
        assert (await client.get("/graphql", params=params)).headers["x-cache-status"] == "HIT"
        # Now an anonymous answer is cached: a request with a token still does not get it.
        for headers in (signed_in, {"Authorization": "Bearer not-a-token"}):
            response = await client.get("/graphql", params=params, headers=headers)
            assert response.headers["x-cache-status"] == "BYPASS"
        viewer = await client.get(
            "/graphql", params={"query": VIEWER, "variables": json.dumps({})}, headers=signed_in
        )
        assert viewer.json()["data"]["viewer"]["username"] == "ann"
        assert viewer.headers["x-cache-status"] == "BYPASS"
        # An anonymous answer with errors is not kept either.
        for _ in range(2):
            refused = await client.get("/graphql", params={"query": VIEWER})
            assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            assert refused.headers["x-cache-status"] == "MISS"
    assert await graphql_gets_seen_by_api(api_url) == 2 + 1 + 2 + 1 + 2


async def test_a_stampede_on_a_cold_key_reaches_the_api_once(nginx_url: str, api_url: str) -> None:
    """All requests are on the wire before nginx answers any (an HTTP client library would
    send them one by one, and the first answer could be cached before the last left): without
    proxy_cache_lock each of them goes upstream."""
    async with httpx.AsyncClient(base_url=nginx_url, timeout=30) as client:
        await sign_up(client, "ann")
    answers = await burst(nginx_url, "/graphql?" + urlencode({"query": PUBLIC_QUERY}), STAMPEDE)
    assert {status for status, _ in answers} == {200}
    assert len({body for _, body in answers}) == 1
    assert await graphql_gets_seen_by_api(api_url) == 1


async def burst(base_url: str, target: str, count: int) -> list[tuple[int, bytes]]:
    """`count` identical GETs, each on its own connection, all written before any is read;
    (status, body) of each answer."""
    address = urlparse(base_url)
    assert address.hostname and address.port
    connections = [
        await asyncio.open_connection(address.hostname, address.port) for _ in range(count)
    ]
    request = f"GET {target} HTTP/1.1\r\nHost: {address.netloc}\r\nConnection: close\r\n\r\n"
    for _, writer in connections:
        writer.write(request.encode())
    await asyncio.gather(*(writer.drain() for _, writer in connections))
    raw = await asyncio.gather(*(reader.read() for reader, _ in connections))
    for _, writer in connections:
        writer.close()
    answers = []
    for response in raw:
        head, _, body = response.partition(b"\r\n\r\n")
        answers.append((int(head.split(b" ", 2)[1]), body))
    return answers


async def test_public_server_refuses_metrics(nginx_url: str) -> None:
    async with httpx.AsyncClient(base_url=nginx_url, timeout=30) as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200


def api_sockets(api_url: str) -> dict[str, int]:
    """The API port's TCP sockets on this machine by state (from /proc/net/tcp)."""
    port = f"{urlparse(api_url).port:04X}"
    states = {"01": "established", "06": "time_wait"}
    found = {"established": 0, "time_wait": 0}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if local.endswith(f":{port}") and state in states:
            found[states[state]] += 1
    return found


async def test_requests_reuse_upstream_connections(api_url: str, nginx_url: str) -> None:
    """The upstream keeps connections alive: 30 requests, one after another, open one
    connection to the API instead of 30 (each closed one would leave a TIME_WAIT behind)."""
    async with httpx.AsyncClient(base_url=nginx_url, timeout=30) as client:
        token, _ = await sign_up(client, "ann")
        for _ in range(30):
            body = {"query": VIEWER}
            response = await client.post(
                "/graphql", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200
    sockets = api_sockets(api_url)
    assert sockets["established"] >= 1 and sockets["time_wait"] <= 1, sockets


def cached_file_sizes(nginx_dir: Path) -> list[int]:
    return [
        path.stat().st_size for path in (nginx_dir / "cache" / "media").rglob("*") if path.is_file()
    ]


async def test_media_ranges_through_the_cdn_are_exact_and_cached_in_slices(
    nginx_url: str, settings: Settings, tmp_path: Path
) -> None:
    """A video player's Range requests through the pull CDN: 206 with exactly the asked bytes,
    across a slice boundary too, the whole object as a 200; asked again, from the cache. A seek
    near the end fetches and keeps only the 1 MiB slice it falls in, not the whole object."""
    public = Path(settings.media_local_dir) / "public" / "7"
    public.mkdir(parents=True)
    body = os.urandom(3 * 1024 * 1024 + 5)
    (public / "9.mp4").write_bytes(body)
    async with httpx.AsyncClient(base_url=nginx_url, timeout=30) as client:
        seek = await client.get("/media/public/7/9.mp4", headers={"Range": "bytes=3145728-"})
        assert seek.status_code == 206 and seek.content == body[3145728:]
        sizes = cached_file_sizes(tmp_path / "nginx")
        assert len(sizes) == 1 and sizes[0] < 64 * 1024, sizes  # the last slice: 5 bytes
        for first, last in [(0, 99), (1_048_570, 1_048_580), (3_000_000, len(body) - 1)]:
            for expected_cache in ("MISS", "HIT"):
                response = await client.get(
                    "/media/public/7/9.mp4", headers={"Range": f"bytes={first}-{last}"}
                )
                assert response.status_code == 206
                assert response.headers["content-range"] == f"bytes {first}-{last}/{len(body)}"
                assert response.content == body[first : last + 1]
                if first == 0:  # the first slice: cached by the first request
                    assert response.headers["x-cache-status"] == expected_cache
        whole = await client.get("/media/public/7/9.mp4")
        assert whole.status_code == 200 and whole.content == body
