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

    def env(self) -> dict[str, str]:
        return {"PATH": "/usr/bin:/bin", **self.settings.to_env()}

    def start_api(self) -> None:
        argv = [sys.executable, "-m", "uvicorn", "app:create_app", "--factory", "--host",
                LOOPBACK, "--port", str(self.settings.port), "--log-level", "warning"]  # fmt: skip
        self.api = ManagedProcess("api", argv, env=self.env(), cwd=ROOT,
                                  log_path=self.work_dir / "api.log")  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.api_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the API did not start; see api.log")

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
        if self.api is not None:
            self.api.stop()
        for server in reversed(self.servers):
            server.stop()
