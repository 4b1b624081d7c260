"""Image verification in a child process with bounded memory and time.

A crafted file can make a decoder allocate gigabytes or spin for minutes. Each verification runs
`storage/images.py` as a fresh child (`python -I`) that caps its own address space (RLIMIT_AS)
and CPU time (RLIMIT_CPU) before reading the file; the parent waits in a thread, off the event
loop, kills it past a wall-clock timeout, and bounds how many run at once. Whatever the file
does, the API process only ever holds the upload and the clean copy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from dataclasses import dataclass

from storage import images
from storage.images import CONTENT_TYPES, CleanImage, InvalidImage

log = logging.getLogger(__name__)

TOO_COSTLY = "decoding it needs more memory or time than allowed"


@dataclass(frozen=True)
class SandboxLimits:
    max_pixels: int  # frames x width x height
    max_frames: int
    memory_bytes: int  # the child's whole address space (interpreter and Pillow included)
    cpu_seconds: int
    timeout_seconds: float  # wall clock, then the child is killed
    concurrency: int  # children at once per process


class ImageSandbox:
    def __init__(self, limits: SandboxLimits) -> None:
        self.limits = limits
        self._slots = asyncio.Semaphore(limits.concurrency)

    async def clean_copy(self, data: bytes, declared_type: str) -> CleanImage:
        """What `storage.images.clean_copy` returns, computed in a bounded child process.
        Raises InvalidImage with the reason (including exceeding the limits)."""
        async with self._slots:
            return await asyncio.to_thread(self._run_child, data, declared_type)

    def _run_child(self, data: bytes, declared_type: str) -> CleanImage:
        limits = self.limits
        command = [
            sys.executable,
            "-I",  # no environment, no user site, no script folder on sys.path
            images.__file__,
            declared_type,
            str(limits.max_pixels),
            str(limits.max_frames),
            str(limits.memory_bytes),
            str(limits.cpu_seconds),
        ]
        try:
            done = subprocess.run(
                command, input=data, capture_output=True, timeout=limits.timeout_seconds
            )
        except subprocess.TimeoutExpired:  # run() has killed the child
            raise InvalidImage(TOO_COSTLY) from None
        header, _, body = done.stdout.partition(b"\n")
        if done.returncode != 0 or not header:
            # Killed by RLIMIT_CPU (SIGXCPU), or an allocation failed outside Python's reach.
            log.warning(
                "image sandbox exited %s: %s",
                done.returncode,
                done.stderr[-500:].decode(errors="replace"),
            )
            raise InvalidImage(TOO_COSTLY)
        result = json.loads(header)
        if "error" in result:
            raise InvalidImage(result["error"])
        extension = CONTENT_TYPES[declared_type][1]
        return CleanImage(body, result["width"], result["height"], declared_type, extension)
