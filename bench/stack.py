"""The stack a benchmark runs against: its own servers on free ports, the API as a uvicorn
subprocess, and a Dramatiq worker that can be stopped and started."""

from __future__ import annotations

import secrets
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from devstack.servers import (
    FEED_REDIS_OPTIONS,
    LOOPBACK,
    ManagedProcess,
    free_port,
    start_redis,
)
from settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Stack:
    settings: Settings
    api_url: str
    work_dir: Path
    servers: list[ManagedProcess]
    api: ManagedProcess | None = None
    worker: ManagedProcess | None = None

    @classmethod
    def start(cls, work_dir: Path, **overrides: Any) -> Stack:
        """Servers started; `overrides` are Settings fields (each of its own type, checked by
        `dataclasses.replace`)."""
        graph_port, data_port, api_port = free_port(), free_port(), free_port()
        servers = [
            start_redis("graph", graph_port, work_dir / "graph", falkordb=True, appendonly=False),
            start_redis("data", data_port, work_dir / "data", appendonly=False,
                        extra=FEED_REDIS_OPTIONS),
        ]  # fmt: skip
        data_url = f"redis://{LOOPBACK}:{data_port}/0"
        api_url = f"http://{LOOPBACK}:{api_port}"
        settings = replace(
            Settings(jwt_secret=secrets.token_urlsafe(40)),
            port=api_port,
            falkordb_url=f"redis://{LOOPBACK}:{graph_port}",
            documents_redis_url=data_url,
            broker_redis_url=data_url,
            feed_redis_url=data_url,
            media_local_dir=str(work_dir / "media"),
            public_api_url=api_url,
            cdn_base_url=f"{api_url}/media",
            argon2_time_cost=1,
            argon2_memory_kib=8,
            argon2_parallelism=1,
            **overrides,
        )
        return cls(settings, api_url, work_dir, servers)

    @property
    def graph_server(self) -> ManagedProcess:
        """FalkorDB (the graph)."""
        return self.servers[0]

    @property
    def data_redis(self) -> ManagedProcess:
        """The Redis holding documents, feeds and the broker (one server in the bench)."""
        return self.servers[1]

    def env(self) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin", **self.settings.to_env()}

    def start_api(self, workers: int = 1) -> None:
        """The API as production launches it (`python -m web.serve`), `workers` processes
        (`WEB_CONCURRENCY`); a running one is stopped first."""
        self.stop_api()
        self.api = self._start_http("api", "web.serve", self.settings.port, workers)

    def stop_api(self) -> None:
        if self.api is not None:
            self.api.stop()
            self.api = None

    def start_api_on(self, port: int, workers: int = 1) -> ManagedProcess:
        """One more API process group (`python -m web.serve`) on `port`, as the scaled stack
        runs a second API container; the caller stops it."""
        return self._start_http(f"api-{port}", "web.serve", port, workers)

    def start_floor(self, port: int, workers: int = 1) -> ManagedProcess:
        """The benchmark's floor app (bench/floor.py) on `port`, launched like the API; the
        caller stops it."""
        return self._start_http("floor", "bench.floor", port, workers)

    def _start_http(self, name: str, module: str, port: int, workers: int) -> ManagedProcess:
        """`python -m <module>` with the stack's settings on `port`; returns once /healthz
        answers 200."""
        env = {**self.env(), "PORT": str(port), "WEB_CONCURRENCY": str(workers)}
        server = ManagedProcess(name, [sys.executable, "-m", module], env=env, cwd=ROOT,
                                log_path=self.work_dir / f"{name}.log")  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not server.running():
                raise RuntimeError(f"{name} {server.exit_status()}:\n{server.log_tail()}")
            try:
                if httpx.get(f"http://{LOOPBACK}:{port}/healthz", timeout=1).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        server.stop()
        raise RuntimeError(f"{name} did not start; see {name}.log")

    def start_worker(self, threads: int = 8) -> None:
        argv = [sys.executable, "-m", "fanout", "--processes", "1", "--threads", str(threads)]
        self.worker = ManagedProcess("worker", argv, env=self.env(), cwd=ROOT,
                                     log_path=self.work_dir / "worker.log")  # fmt: skip

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def stop(self) -> None:
        self.stop_worker()
        self.stop_api()
        for server in reversed(self.servers):
            server.stop()
