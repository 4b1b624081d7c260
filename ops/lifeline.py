"""Tie a process's life to its parent's with Linux's parent-death signal (PR_SET_PDEATHSIG).

The setting is not inherited across fork, so every process that must not outlive its parent
asks for it itself: the children of the supervisor (in `ManagedProcess`) and Dramatiq's worker
processes (in `worker`). It imports nothing heavy: workers in production use it too.
"""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, signum: signal.Signals = signal.SIGTERM) -> None:
    """Have the kernel send `signum` to this process when its parent (`parent_pid`) dies; if it
    died before this call, send it now."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signum)) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)
