"""A read storm on one celebrity's public profile and timeline: the same anonymous
`GET /graphql?query=...` from 32 wrk connections, straight to the API and through nginx with
the project's micro-cache (deploy/nginx/default.conf.template, started by devstack/nginx.py).
The API marks such answers `Cache-Control: public, max-age=PUBLIC_CACHE_SECONDS`, so nginx
serves the storm from its cache and asks the API about once per max-age (proxy_cache_lock:
one upstream request per expiry, however many wait). Target: >= 10x the direct rate."""

from __future__ import annotations

import asyncio
import collections
import json
import tempfile
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from auth.tokens import TokenIssuer
from bench import wrk
from bench.data import reed98_follows
from bench.mixed import seed_reed98, username
from bench.procstat import CpuMeter
from bench.read_path import machine
from bench.stack import Stack
from devstack.nginx import nginx_binary, start_nginx
from devstack.servers import LOOPBACK, free_port
from wiring import open_stores

CONNECTIONS = 32
WARMUP_SECONDS = 2.0
PROFILE_QUERY = (
    "query($u: String!) { user(username: $u) { username displayName followersCount "
    "followingCount tweets(first: 20) { edges { cursor node { id text createdAt } } "
    "pageInfo { hasNextPage endCursor } } } }"
)
NGINX_MISSING = "skipped: nginx is not installed (Debian: apt-get install -y nginx)"


def celebrity() -> str:
    """The most-followed person of Reed98."""
    _, edges = reed98_follows()
    followers = collections.Counter(followee for _, followee in edges)
    return username(followers.most_common(1)[0][0])


def profile_path(name: str) -> str:
    variables = json.dumps({"u": name}, separators=(",", ":"))
    return "/graphql?" + urllib.parse.urlencode({"query": PROFILE_QUERY, "variables": variables})


async def run(small: bool = False) -> None:
    if nginx_binary() is None:
        print(f"celebrity-profile storm: {NGINX_MISSING}")
        return
    if not wrk.available():
        print(f"celebrity-profile storm: {wrk.WRK_MISSING}")
        return
    seconds = 4.0 if small else 10.0
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack.start(Path(tmp))
        stores = open_stores(stack.settings)
        try:
            await seed_reed98(stores, TokenIssuer(stack.settings.jwt_secret, 3600))
            stack.start_api(workers=2)
            with nginx_in_front(stack, Path(tmp)) as nginx:
                await storm(stack, nginx, profile_path(celebrity()), seconds, Path(tmp))
        finally:
            await stores.close()
            stack.stop()


@dataclass(frozen=True)
class Nginx:
    url: str
    pid: int


@contextmanager
def nginx_in_front(stack: Stack, tmp: Path) -> Iterator[Nginx]:
    """nginx (devstack/nginx.py: the shipped template, rendered) on a free port in front of the
    stack's API processes."""
    port = free_port()
    server = start_nginx(
        tmp / "nginx",
        port=port,
        api_addresses=[f"{LOOPBACK}:{stack.settings.port}"],
        media_origin=stack.api_url,
    )
    try:
        yield Nginx(f"http://{LOOPBACK}:{port}", server.pid)
    finally:
        server.stop()


async def storm(stack: Stack, nginx: Nginx, path: str, seconds: float, tmp: Path) -> None:
    """The same storm straight to the API, then through nginx; the ratio of their rates."""
    async with httpx.AsyncClient(timeout=10) as client:
        direct = await client.get(stack.api_url + path)
        cached = await client.get(nginx.url + path)
    assert direct.status_code == 200 and "errors" not in direct.json(), direct.text[:300]
    assert cached.content == direct.content, "nginx answers differently from the API"
    print(
        f"storm query: {len(direct.content):,} bytes, Cache-Control: "
        f"{direct.headers.get('cache-control')!r}"
    )
    script = wrk.write_script(tmp, "storm", wrk.get_script(path))
    direct_rate = await storm_run("direct to the API", stack, nginx, stack.api_url, script, seconds)
    cached_rate = await storm_run("through nginx", stack, nginx, nginx.url, script, seconds)
    print(
        f"storm through nginx's micro-cache vs direct: {cached_rate / direct_rate:.1f}x "
        f"(target >= 10x)"
    )


async def storm_run(
    name: str, stack: Stack, nginx: Nginx, base_url: str, script: Path, seconds: float
) -> float:
    """One wrk run of the storm against `base_url`, printed with the CPU the API and nginx
    spent per request; its req/s. An unmeasured warm-up first: wrk's requests carry no Accept
    header, a variant of its own (the API varies on Accept), so wrk's first wave would find a
    cold key and wait on nginx's cache lock, which is checked every 500 ms. The figure is the
    storm on a hot profile; that first wave is a one-off."""
    assert stack.api is not None
    await asyncio.to_thread(
        wrk.run_wrk, base_url + "/graphql", script, connections=CONNECTIONS, seconds=WARMUP_SECONDS
    )
    meter = CpuMeter({"api": [stack.api.pid], "nginx": [nginx.pid]})
    meter.start()
    load = await asyncio.to_thread(
        wrk.run_wrk, base_url + "/graphql", script, connections=CONNECTIONS, seconds=seconds
    )
    meter.stop()
    n = max(1, load.requests)
    print(
        f"storm {name}: {load.summary()}; {load.cache_hits:,} cache hits; CPU per request: "
        f"API {meter.seconds['api'] / n * 1000:.3f} ms, nginx "
        f"{meter.seconds['nginx'] / n * 1000:.3f} ms, wrk {load.client_ms_per_request():.3f} ms; "
        f"{meter.machine()}"
    )
    return load.rate
