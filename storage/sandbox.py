"""Run a decoder on hostile input in a child process with bounded memory, CPU and wall time.

A crafted file can make a decoder allocate gigabytes, spin for minutes or crash. Each job runs a
self-contained script (`storage/images.py`, `storage/videos.py`) as a fresh child (`python -I`:
no environment, no user site, no script folder on sys.path) that caps its own address space
(RLIMIT_AS), CPU time (RLIMIT_CPU) and, where it writes files, their size (RLIMIT_FSIZE) before
it reads a byte (`limit_self`, which each script copies: `-I` keeps it from importing this
package). The parent waits in a thread, off the event loop, kills the child past a wall-clock
timeout, and bounds how many run at once. The child answers with one JSON line on stdout,
then optional bytes.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

TOO_COSTLY = "decoding it needs more memory or time than allowed"
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded before any fork: the child only calls it


def _die_with(parent_pid: int) -> None:
    """In the child, before exec: the kernel kills it when the thread that started it (the
    worker) dies, even by SIGKILL, so no decoder outlives its worker. (ops/lifeline.py does
    the same for servers; storage may not import it.)"""
    if _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL)) != 0 or os.getppid() != parent_pid:
        os._exit(1)


@dataclass(frozen=True)
class ChildLimits:
    memory_bytes: int  # the child's whole address space (interpreter and libraries included)
    cpu_seconds: int
    timeout_seconds: float  # wall clock, then the child is killed
    concurrency: int  # children at once per process


class SandboxRefused(Exception):
    """The child refused the input (its reason), or was stopped by a limit (TOO_COSTLY)."""


class Sandbox:
    def __init__(self, limits: ChildLimits) -> None:
        self.limits = limits
        self._slots = asyncio.Semaphore(limits.concurrency)

    async def run(
        self, script: str, args: list[str], data: bytes = b""
    ) -> tuple[dict[str, Any], bytes]:
        """Run `script` with `args` after the memory and CPU limits, `data` on its stdin.
        Returns (the child's JSON header, the bytes after it). Raises SandboxRefused."""
        async with self._slots:
            return await asyncio.to_thread(self._run_child, script, args, data)

    def _run_child(self, script: str, args: list[str], data: bytes) -> tuple[dict[str, Any], bytes]:
        limits = self.limits
        command = [
            sys.executable,
            "-I",
            script,
            str(limits.memory_bytes),
            str(limits.cpu_seconds),
            *args,
        ]
        try:
            done = subprocess.run(
                command,
                input=data,
                capture_output=True,
                timeout=limits.timeout_seconds,
                preexec_fn=functools.partial(_die_with, os.getpid()),
            )
        except subprocess.TimeoutExpired:  # run() has killed the child
            raise SandboxRefused(TOO_COSTLY) from None
        header, _, body = done.stdout.partition(b"\n")
        if done.returncode != 0 or not header:
            # Killed by RLIMIT_CPU (SIGXCPU) or RLIMIT_FSIZE (SIGXFSZ), or an allocation failed
            # outside Python's reach.
            log.warning(
                "sandbox %s exited %s: %s",
                script.rsplit("/", 1)[-1],
                done.returncode,
                done.stderr[-500:].decode(errors="replace"),
            )
            raise SandboxRefused(TOO_COSTLY)
        result: dict[str, Any] = json.loads(header)
        if "error" in result:
            # The reason is short and fixed (it reaches the client); what the library said
            # (paths, errno numbers, decoder log lines) is only logged.
            if result.get("detail"):
                log.info("sandbox %s refused: %s", script.rsplit("/", 1)[-1], result["detail"])
            raise SandboxRefused(result["error"])
        return result, body
