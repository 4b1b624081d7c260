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
import secrets
import signal
import sys
import textwrap
import threading
import time
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
from settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
RESTART_FIRST_SECONDS = 1.0  # a crashed worker is restarted after this; doubled per crash...
RESTART_MAX_SECONDS = 30.0  # ...up to this
RESTART_RESET_SECONDS = 60.0  # a worker that ran this long crashed afresh: back to the first delay
POLL_SECONDS = 0.5  # how often the children are checked


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"{name}: expected a port number (1-65535), got {raw!r}")
    return int(raw)


def jwt_secret(var_dir: Path) -> str:
    """JWT_SECRET from the environment, else one generated once and kept in var/jwt_secret."""
    if os.environ.get("JWT_SECRET"):
        return os.environ["JWT_SECRET"]
    path = var_dir / "jwt_secret"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


def report_exit(child: ManagedProcess) -> None:
    """Print how a child ended and the last thing it wrote: the cause is usually there."""
    tail = child.log_tail() or "(no output)"
    print(
        f"devstack: {child.name} {child.exit_status()}; the end of {child.log_path}:\n"
        + textwrap.indent(tail, "    "),
        file=sys.stderr,
    )


def supervise(children: list[ManagedProcess], worker: ManagedProcess, stop: threading.Event) -> int:
    """Watch the children until `stop` is set (0). A worker that exits is restarted after a
    delay that doubles per crash; any other child exiting stops the stack (1)."""
    delay = RESTART_FIRST_SECONDS
    restart_at: float | None = None
    while not stop.wait(POLL_SECONDS):
        now = time.monotonic()
        if restart_at is not None and now >= restart_at:
            worker.start()
            restart_at = None
        for child in children:
            if child.running() or (child is worker and restart_at is not None):
                continue
            report_exit(child)
            if child is not worker:
                print(f"devstack: {child.name} exited; stopping", file=sys.stderr)
                return 1
            worker.stop()  # its whole process group: no part of it may linger
            if now - worker.started_at >= RESTART_RESET_SECONDS:
                delay = RESTART_FIRST_SECONDS
            print(f"devstack: restarting the worker in {delay:g} s", file=sys.stderr)
            restart_at = now + delay
            delay = min(2 * delay, RESTART_MAX_SECONDS)
    return 0


def main() -> int:
    var_dir = Path(os.environ.get("VAR_DIR", ROOT / "var")).resolve()
    try:
        api_port = _port("PORT", 8000)
        data_port = _port("DEVSTACK_REDIS_PORT", 6379)
        graph_port = _port("DEVSTACK_GRAPH_PORT", 6380)
        for port, what in [(api_port, "API"), (data_port, "Redis"), (graph_port, "FalkorDB")]:
            require_free(port, what)
    except SettingsError as exc:
        print(f"devstack: bad setting: {exc}", file=sys.stderr)
        return 2
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
    try:
        Settings.from_env(env)  # what the worker and the API will read: fail here, not there
    except SettingsError as exc:
        print(f"devstack: bad setting: {exc}", file=sys.stderr)
        return 2
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
        worker = ManagedProcess(
            "worker",
            [python, "-m", "fanout", "--processes", "1", "--threads", "4"],
            env=env,
            cwd=ROOT,
            log_path=logs / "worker.log",
            # Killed outright if the supervisor dies: a graceful Dramatiq stop would wait for
            # the Redis servers dying beside it and can hang in its shutdown; a crash loses
            # nothing (the broker redelivers what the worker held).
            parent_death_signal=signal.SIGKILL,
        )
        children.append(worker)
        api_argv = [python, "-m", "web.serve"]  # HOST, PORT and the rest from env
        children.append(
            ManagedProcess("api", api_argv, env=env, cwd=ROOT, log_path=logs / "api.log")
        )
        print(f"devstack: GraphiQL at http://{LOOPBACK}:{api_port}/graphql (Ctrl-C stops)")
        return supervise(children, worker, stopping)
    except ServerFailedToStart as exc:
        print(f"devstack: {exc} (logs under {var_dir})", file=sys.stderr)
        return 1
    finally:
        for child in reversed(children):
            child.stop()
        print("devstack: stopped", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
