"""Run the API under uvicorn with the server options that follow from Settings.

Every launcher (the embedded stack, the Docker image, the tests) goes through `uvicorn_options`,
so the WebSocket message cap and the trusted proxies cannot drift between them:
`python -m web.serve` (HOST, PORT and every other setting from the environment).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

from settings import Settings, SettingsError


def trusted_proxies(settings: Settings) -> list[str]:
    """TRUSTED_PROXIES as a list of addresses or networks (empty: trust no forwarded header)."""
    return [entry.strip() for entry in settings.trusted_proxies.split(",") if entry.strip()]


# How long an idle client connection stays open. nginx closes its idle upstream connections
# sooner (deploy/nginx/default.conf.template, `keepalive_timeout`), so it never sends a request
# on one the API is closing.
KEEP_ALIVE_SECONDS = 5


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.Config keyword arguments: WebSocket messages are bounded like HTTP bodies
    (MAX_BODY_BYTES; a larger one closes the socket with 1009), and X-Forwarded-For is believed
    only from TRUSTED_PROXIES (uvicorn's own default would trust any local peer)."""
    proxies = trusted_proxies(settings)
    options: dict[str, Any] = {
        "ws_max_size": settings.max_body_bytes,
        "proxy_headers": bool(proxies),
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    }
    if proxies:
        options["forwarded_allow_ips"] = proxies
    return options


MAX_AUTO_WORKERS = 4


def worker_processes(settings: Settings) -> int:
    """WEB_CONCURRENCY, or (0) one API process per core, at most MAX_AUTO_WORKERS: one Python
    process uses one core, and a feed read is CPU-bound in the API."""
    return settings.web_concurrency or min(MAX_AUTO_WORKERS, os.cpu_count() or 1)


def serve(settings: Settings) -> int:
    """Serve until stopped; the exit status is uvicorn's STARTUP_FAILURE (3) if the app could
    not start, in any worker process (uvicorn's own multi-process supervisor exits 0 then)."""
    config = uvicorn.Config(
        "app:served_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=worker_processes(settings),
        **uvicorn_options(settings),
    )
    if config.workers == 1:
        server = uvicorn.Server(config)
        server.run()
        return 0 if server.started else STARTUP_FAILURE
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    failed = any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes)
    return STARTUP_FAILURE if failed else 0


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"api: bad setting: {exc}", file=sys.stderr)
        return 2
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
