"""`python -m devstack`: run the embedded stack in the foreground until Ctrl-C (or SIGTERM).

Starts, in order: the graph server (redis-server + FalkorDB), the data server (redis-server for
documents and the job broker), one Dramatiq worker, and uvicorn serving the API. Data lives under
VAR_DIR (default ./var) with AOF persistence, so it survives a restart. All ports are loopback.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
from pathlib import Path

from devstack.servers import (
    FEED_REDIS_OPTIONS,
    LOOPBACK,
    ManagedProcess,
    PortInUse,
    ServerFailedToStart,
    require_free,
    start_redis,
)

ROOT = Path(__file__).resolve().parent.parent


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def jwt_secret(var_dir: Path) -> str:
    """JWT_SECRET from the environment, else one generated once and kept in var/jwt_secret."""
    if os.environ.get("JWT_SECRET"):
        return os.environ["JWT_SECRET"]
    path = var_dir / "jwt_secret"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


def main() -> int:
    var_dir = Path(os.environ.get("VAR_DIR", ROOT / "var")).resolve()
    api_port = _port("PORT", 8000)
    data_port = _port("DEVSTACK_REDIS_PORT", 6379)
    graph_port = _port("DEVSTACK_GRAPH_PORT", 6380)
    try:
        for port, what in [(api_port, "API"), (data_port, "Redis"), (graph_port, "FalkorDB")]:
            require_free(port, what)
    except PortInUse as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 2
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
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())

    children: list[ManagedProcess] = []
    try:
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
        python = sys.executable
        children.append(
            ManagedProcess(
                "worker",
                [python, "-m", "fanout", "--processes", "1", "--threads", "4"],
                env=env,
                cwd=ROOT,
                log_path=logs / "worker.log",
            )
        )
        api_argv = [python, "-m", "web.serve"]  # HOST, PORT and the rest from env
        children.append(ManagedProcess("api", api_argv, env=env, cwd=ROOT))
        print(f"devstack: GraphiQL at http://{LOOPBACK}:{api_port}/graphql (Ctrl-C stops)")
        while not stopping.wait(0.5):
            dead = [child.name for child in children if not child.running()]
            if dead:
                print(f"devstack: {', '.join(dead)} exited; stopping", file=sys.stderr)
                return 1
        return 0
    except ServerFailedToStart as exc:
        print(f"devstack: {exc} (logs under {var_dir})", file=sys.stderr)
        return 1
    finally:
        for child in reversed(children):
            child.stop()
        print("devstack: stopped", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
