"""Test helpers: the API served by a real uvicorn on a free port, and a real Dramatiq worker."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import redis
import uvicorn

from app import create_app
from devstack.servers import LOOPBACK, ManagedProcess, free_port
from settings import Settings
from web.serve import uvicorn_options

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def serve_api(settings: Settings) -> Iterator[str]:
    """Serve the app with uvicorn in a thread (its own event loop); yields the base URL.
    The local media backend's public URLs are pointed at the chosen port."""
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    if settings.media_backend == "local":
        settings = replace(settings, public_api_url=url, cdn_base_url=f"{url}/media")
    config = uvicorn.Config(
        create_app(settings),
        host=LOOPBACK,
        port=port,
        log_level="warning",
        lifespan="on",
        loop="asyncio",  # uvloop in a non-main thread fails intermittently (EBUSY)
        **uvicorn_options(settings),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(20)


@contextmanager
def run_worker(settings: Settings, log_path: Path) -> Iterator[ManagedProcess]:
    """A real worker process (`python -m fanout`) configured with `settings`."""
    env = {**os.environ, **settings.to_env()}
    worker = ManagedProcess(
        "worker",
        [sys.executable, "-m", "fanout", "--processes", "1", "--threads", "2"],
        env=env,
        cwd=ROOT,
        log_path=log_path,
    )
    try:
        yield worker
    finally:
        worker.stop()


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def queues_idle(settings: Settings, queues: tuple[str, ...]) -> bool:
    """True when none of these Dramatiq queues holds a message not yet acknowledged (delayed
    ones included)."""
    client = redis.Redis.from_url(settings.broker_redis_url)
    try:
        pending = 0
        for queue in queues:
            pending += client.hlen(f"dramatiq:{queue}.msgs")
            pending += client.hlen(f"dramatiq:{queue}.DQ.msgs")
        return pending == 0
    finally:
        client.close()
