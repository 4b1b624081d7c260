"""What both stack commands share: settings checks, the JWT secret kept under VAR_DIR, and the
supervisor that starts the children, watches them, restarts the replaceable ones with backoff and
stops everything on Ctrl-C (SIGINT) or SIGTERM.

`python -m devstack` (the embedded stack) and `python -m devstack.scaled` (the scaled stack)
differ only in what they start.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

from devstack.servers import ManagedProcess, PortInUse, ServerFailedToStart
from fanout.queues import GENERAL_QUEUES
from settings import SettingsError

ROOT = Path(__file__).resolve().parent.parent

RESTART_FIRST_SECONDS = 1.0  # a crashed replaceable child is restarted after this; doubled...
RESTART_MAX_SECONDS = 30.0  # ...per crash up to this
RESTART_RESET_SECONDS = 60.0  # a child that ran this long crashed afresh: back to the first delay
POLL_SECONDS = 0.5  # how often the children are checked


def port_setting(name: str, default: int) -> int:
    """The port in environment variable `name`; SettingsError names a bad one."""
    raw = os.environ.get(name, str(default))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"{name}: expected a port number (1-65535), got {raw!r}")
    return int(raw)


def jwt_secret(var_dir: Path) -> str:
    """JWT_SECRET from the environment, else one generated once and kept in VAR_DIR/jwt_secret."""
    if os.environ.get("JWT_SECRET"):
        return os.environ["JWT_SECRET"]
    path = var_dir / "jwt_secret"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


def refuse(exc: SettingsError | PortInUse) -> int:
    """Say why the stack cannot start (nothing has been started yet); the exit status."""
    prefix = "bad setting: " if isinstance(exc, SettingsError) else ""
    print(f"devstack: {prefix}{exc}", file=sys.stderr)
    return 2


def worker_process(
    name: str,
    env: Mapping[str, str],
    logs: Path,
    *,
    threads: int = 4,
    queues: tuple[str, ...] = GENERAL_QUEUES,
) -> ManagedProcess:
    """One Dramatiq worker process (`python -m fanout`) logging to `logs`/`name`.log, consuming
    `queues` (the general ones by default; `VIDEO_QUEUES` for a video worker)."""
    return ManagedProcess(
        name,
        [
            *(sys.executable, "-m", "fanout", "--processes", "1", "--threads", str(threads)),
            *("--queues", *queues),
        ],
        env=env,
        cwd=ROOT,
        log_path=logs / f"{name}.log",
        # Killed outright if the supervisor dies: a graceful Dramatiq stop would wait for the
        # Redis servers dying beside it and can hang in its shutdown; a crash loses nothing
        # (the broker redelivers what the worker held).
        parent_death_signal=signal.SIGKILL,
    )


def api_process(name: str, env: Mapping[str, str], logs: Path) -> ManagedProcess:
    """The API (`python -m web.serve`: HOST, PORT and the rest from `env`) logging to
    `logs`/`name`.log."""
    argv = [sys.executable, "-m", "web.serve"]
    return ManagedProcess(name, argv, env=env, cwd=ROOT, log_path=logs / f"{name}.log")


def report_exit(child: ManagedProcess) -> None:
    """Print how a child ended and the last thing it wrote: the cause is usually there."""
    tail = child.log_tail() or "(no output)"
    print(
        f"devstack: {child.name} {child.exit_status()}; the end of {child.log_path}:\n"
        + textwrap.indent(tail, "    "),
        file=sys.stderr,
    )


def supervise(
    children: list[ManagedProcess],
    replaceable: Collection[ManagedProcess],
    stop: threading.Event,
) -> int:
    """Watch the children until `stop` is set (0). A replaceable child that exits is restarted
    after a delay that doubles per crash (each child its own); so is a server with a
    `restart_when`, once that also agrees (a cluster node: once its replica took over); any
    other child exiting stops the stack (1)."""
    restartable = [*replaceable, *(c for c in children if c.restart_when is not None)]
    delay = {child: RESTART_FIRST_SECONDS for child in restartable}
    restart_at: dict[ManagedProcess, float] = {}
    exited_at: dict[ManagedProcess, float] = {}
    while not stop.wait(POLL_SECONDS):
        now = time.monotonic()
        for child, when in list(restart_at.items()):
            agrees = child.restart_when is None or child.restart_when(now - exited_at[child])
            if now >= when and agrees:
                child.start()
                print(f"devstack: {child.name} started again", file=sys.stderr)
                del restart_at[child]
        for child in children:
            if child.running() or child in restart_at:
                continue
            report_exit(child)
            if child not in delay:
                print(f"devstack: {child.name} exited; stopping", file=sys.stderr)
                return 1
            child.stop()  # its whole process group: no part of it may linger
            if now - child.started_at >= RESTART_RESET_SECONDS:
                delay[child] = RESTART_FIRST_SECONDS
            later = "" if child.restart_when is None else " at the earliest"
            print(
                f"devstack: restarting the {child.name} in {delay[child]:g} s{later}",
                file=sys.stderr,
            )
            restart_at[child] = now + delay[child]
            exited_at[child] = now
            delay[child] = min(2 * delay[child], RESTART_MAX_SECONDS)
    return 0


class _Interrupted(Exception):
    """Ctrl-C or SIGTERM while the stack was still starting."""


# Starts the children, appending each to the list as soon as it exists (so that a failure
# part-way stops those already running), and returns those to restart when they exit.
StartChildren = Callable[[list[ManagedProcess]], Collection[ManagedProcess]]


def run_stack(start: StartChildren, var_dir: Path) -> int:
    """Start the children with `start`, supervise them until Ctrl-C or SIGTERM, then stop them
    all, the last started first. Children must be started from this (the main) thread: the
    parent-death signal they get is tied to the thread that forked them."""
    stopping = threading.Event()
    starting = True

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        if starting:  # do not wait for a slow start-up to finish
            raise _Interrupted

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    children: list[ManagedProcess] = []
    replaceable: Collection[ManagedProcess] = ()
    try:
        replaceable = start(children)
        starting = False
        return supervise(children, replaceable, stopping)
    except _Interrupted:
        print("devstack: interrupted while starting", file=sys.stderr)
        return 1
    except ServerFailedToStart as exc:
        print(f"devstack: {exc} (logs under {var_dir})", file=sys.stderr)
        return 1
    finally:
        starting = False  # a second Ctrl-C must not break off the clean-up
        stop_all(children, replaceable)
        print("devstack: stopped", file=sys.stderr)


def stop_all(children: list[ManagedProcess], replaceable: Collection[ManagedProcess]) -> None:
    """Stop the children, the last started first, except that the replaceable ones (API and
    worker processes, each taking a second or so to shut down gracefully) stop together, when
    the first of them is reached."""
    together = [child for child in children if child in replaceable]
    for child in reversed(children):
        if child not in replaceable:
            child.stop()
        elif together:
            with ThreadPoolExecutor(len(together)) as pool:
                list(pool.map(ManagedProcess.stop, together))
            together = []
