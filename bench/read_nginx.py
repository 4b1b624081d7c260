"""Feed-read throughput through nginx with one vs two API processes (issue 10): the same
authenticated feed-page reads as `bench reads` (the same seed, readers, wrk script: pages of 20
tweets with authors, checked on every response) sent through nginx (devstack/nginx.py, the
shipped template; a request with a token bypasses the micro-cache) to
  (a) one API process (`python -m web.serve`, WEB_CONCURRENCY=1): one upstream server;
  (b) two API processes on two ports, WEB_CONCURRENCY=1 each, as the scaled stack runs them:
      two upstream servers.
Printed: req/s, p50/p99, CPU per request of the API processes, nginx, Redis and wrk, the ratio
(b)/(a), and how busy the machine's cores were. One 2-core machine holds all of it."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from bench import wrk
from bench.procstat import CpuMeter
from bench.read_path import (
    CONNECTIONS,
    FULL,
    PAGE,
    SMALL,
    WARMUP_SECONDS,
    Config,
    feed_body,
    machine,
    seeded_readers,
    warm_feeds,
)
from bench.stack import Stack
from bench.storm import NGINX_MISSING
from devstack.nginx import nginx_binary, start_nginx
from devstack.servers import LOOPBACK, ManagedProcess, free_port
from wiring import open_stores


@dataclass(frozen=True)
class NginxRun:
    name: str
    load: wrk.WrkResult
    api_ms: float
    nginx_ms: float
    redis_ms: float
    machine_cores: float
    machine: str

    def line(self) -> str:
        return (
            f"{self.name}: {self.load.summary()}; CPU per request: API {self.api_ms:.2f} ms, "
            f"nginx {self.nginx_ms:.3f} ms, Redis {self.redis_ms:.2f} ms, wrk "
            f"{self.load.client_ms_per_request():.3f} ms; {self.machine}"
        )


async def run(small: bool = False) -> None:
    if nginx_binary() is None:
        print(f"feed reads through nginx: {NGINX_MISSING}")
        return
    if not wrk.available():
        print(f"feed reads through nginx: {wrk.WRK_MISSING}")
        return
    config = SMALL if small else FULL
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack.start(Path(tmp))
        try:
            await _run(stack, config, Path(tmp))
        finally:
            stack.stop()


async def _run(stack: Stack, config: Config, tmp: Path) -> None:
    stores = open_stores(replace(stack.settings, redis_timeout_seconds=30))
    try:
        _, tokens = await seeded_readers(stack, stores, config)  # the readers of `bench reads`
        requests = [wrk.post_request("/graphql", feed_body(), t) for t in tokens]
        script = wrk.write_script(tmp, "feed", wrk.rotating_script(requests, expect_authors=PAGE))
        assert stack.api is not None
        direct = await measure(
            "direct to 1 API process (no nginx, for reference)",
            stack.api_url, script, [stack.api], None, stack, config.seconds,
        )  # fmt: skip
        one = await through_nginx(
            "through nginx, 1 API process (1 upstream)", stack, [stack.api],
            [stack.settings.port], script, config.seconds, tmp / "nginx-1",
        )  # fmt: skip
        port2 = free_port()
        second = stack.start_api_on(port2, workers=1)
        try:
            await warm_feeds(f"http://{LOOPBACK}:{port2}", tokens[:50])
            two = await through_nginx(
                "through nginx, 2 API processes (2 upstreams)", stack, [stack.api, second],
                [stack.settings.port, port2], script, config.seconds, tmp / "nginx-2",
            )  # fmt: skip
        finally:
            second.stop()
        print(
            f"through nginx: 2 API processes {two.load.rate:,.0f} req/s vs 1 process "
            f"{one.load.rate:,.0f} req/s = {two.load.rate / one.load.rate:.2f}x; nginx vs direct "
            f"(1 process): {one.load.rate / direct.load.rate:.2f}x; nginx CPU per request "
            f"{one.nginx_ms:.3f} / {two.nginx_ms:.3f} ms; machine busy "
            f"{one.machine_cores:.2f} / {two.machine_cores:.2f} cores"
        )
    finally:
        await stores.close()


async def through_nginx(
    name: str,
    stack: Stack,
    apis: list[ManagedProcess],
    ports: list[int],
    script: Path,
    seconds: float,
    directory: Path,
) -> NginxRun:
    port = free_port()
    server = start_nginx(
        directory,
        port=port,
        api_addresses=[f"{LOOPBACK}:{p}" for p in ports],
        media_origin=stack.api_url,
    )
    try:
        return await measure(name, f"http://{LOOPBACK}:{port}", script, apis, server, stack,
                             seconds)  # fmt: skip
    finally:
        server.stop()


async def measure(
    name: str,
    url: str,
    script: Path,
    apis: list[ManagedProcess],
    nginx: ManagedProcess | None,
    stack: Stack,
    seconds: float,
) -> NginxRun:
    """wrk for `seconds` after an unmeasured warm-up; CPU of each side from /proc."""
    await asyncio.to_thread(
        wrk.run_wrk, url + "/graphql", script, connections=CONNECTIONS, seconds=WARMUP_SECONDS
    )
    trees = {"api": [a.pid for a in apis], "redis": [stack.data_redis.pid]}
    if nginx is not None:
        trees["nginx"] = [nginx.pid]
    meter = CpuMeter(trees)
    meter.start()
    load = await asyncio.to_thread(
        wrk.run_wrk, url + "/graphql", script, connections=CONNECTIONS, seconds=seconds
    )
    meter.stop()
    assert load.short_pages == 0, f"{load.short_pages} pages without {PAGE} authors"
    n = max(1, load.requests)
    result = NginxRun(
        name=name,
        load=load,
        api_ms=meter.seconds["api"] / n * 1000,
        nginx_ms=meter.seconds.get("nginx", 0.0) / n * 1000,
        redis_ms=meter.seconds["redis"] / n * 1000,
        machine_cores=meter.machine_cores,
        machine=meter.machine(),
    )
    print(result.line())
    return result
