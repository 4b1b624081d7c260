"""`python -m devstack`: run the embedded stack in the foreground until Ctrl-C (or SIGTERM).

Starts, in order: the graph server (redis-server + FalkorDB), the data server (redis-server for
documents and the job broker), one Dramatiq worker, and uvicorn serving the API. Data lives under
VAR_DIR (default ./var) with AOF persistence, so it survives a restart. All ports are loopback.

Settings are checked before anything starts (a bad one is named). A child that exits has its last
output printed; a crashed worker is restarted with backoff (the messages it held are redelivered
to the new one), any other child exiting stops the stack.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from devstack.servers import (
    FEED_REDIS_OPTIONS,
    LOOPBACK,
    ManagedProcess,
    PortInUse,
    require_free,
    start_redis,
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


def main() -> int:
    var_dir = Path(os.environ.get("VAR_DIR", ROOT / "var")).resolve()
    try:
        api_port = port_setting("PORT", 8000)
        data_port = port_setting("DEVSTACK_REDIS_PORT", 6379)
        graph_port = port_setting("DEVSTACK_GRAPH_PORT", 6380)
        for port, what in [(api_port, "API"), (data_port, "Redis"), (graph_port, "FalkorDB")]:
            require_free(port, what)
        var_dir.mkdir(parents=True, exist_ok=True)
        data_url = f"redis://{LOOPBACK}:{data_port}/0"
        env = {
            "APP_ENV": "development",  # development limits; a variable that is set still wins
            **os.environ,
            "HOST": LOOPBACK,
            "PORT": str(api_port),
            "GRAPH_BACKEND": "falkordb",
            "FALKORDB_URL": f"redis://{LOOPBACK}:{graph_port}",
            "DOCUMENTS_REDIS_URL": data_url,
            "BROKER_REDIS_URL": data_url,
            "FEED_REDIS_URL": data_url,
            "JWT_SECRET": jwt_secret(var_dir),
            "MEDIA_BACKEND": "local",
            "MEDIA_LOCAL_DIR": str(var_dir / "media"),
            "PUBLIC_API_URL": f"http://{LOOPBACK}:{api_port}",
            "CDN_BASE_URL": f"http://{LOOPBACK}:{api_port}/media",
        }
        Settings.from_env(env)  # what the worker and the API will read: fail here, not there
    except (SettingsError, PortInUse) as exc:
        return refuse(exc)

    def start(children: list[ManagedProcess]) -> list[ManagedProcess]:
        children.append(start_redis("graph", graph_port, var_dir / "graph", falkordb=True))
        # One server holds documents and the broker here; only feed keys will carry a TTL, so
        # volatile-lru can never evict a tweet or a queued job.
        children.append(
            start_redis(
                "redis",
                data_port,
                var_dir / "redis",
                extra=["--maxmemory-policy", "volatile-lru", *FEED_REDIS_OPTIONS],
            )
        )
        logs = var_dir / "logs"
        logs.mkdir(exist_ok=True)
        worker = worker_process("worker", env, logs)
        children.append(worker)
        video_worker = worker_process("video-worker", env, logs, threads=1, queues=VIDEO_QUEUES)
        children.append(video_worker)
        children.append(api_process("api", env, logs))
        print(f"devstack: GraphiQL at http://{LOOPBACK}:{api_port}/graphql (Ctrl-C stops)")
        return [worker, video_worker]

    return run_stack(start, var_dir)


if __name__ == "__main__":
    sys.exit(main())
