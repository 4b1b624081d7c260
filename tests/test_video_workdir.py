"""A video worker killed mid-run leaves nothing running and, once another worker starts
processing, nothing on disk: the sandbox child dies with it (PR_SET_PDEATHSIG) and its work
folder (under one known parent, named by its pid) is swept."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from storage.media import sweep_stale_work
from tests.servers import ROOT, wait_until


def test_work_folders_of_dead_processes_are_swept(tmp_path: Path) -> None:
    finished = subprocess.Popen(["true"])
    finished.wait()
    stale, live = tmp_path / f"{finished.pid}-abc", tmp_path / f"{os.getpid()}-def"
    for folder in (stale, live):
        (folder / "out").mkdir(parents=True)
        (folder / "upload").write_bytes(b"x")
    assert sweep_stale_work(tmp_path) == [stale.name]
    assert not stale.exists() and live.exists()
    assert sweep_stale_work(tmp_path / "none") == []


def test_the_sandbox_child_dies_with_its_worker(tmp_path: Path) -> None:
    """A parent runs a sandboxed child that sleeps; the parent is killed with SIGKILL; the
    child does not outlive it (before: it ran on, reparented, until its own timeout)."""
    child_pid = tmp_path / "child.pid"
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text(
        f"import os, time\nopen({str(child_pid)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    )
    parent = textwrap.dedent(
        f"""
        import asyncio
        from storage.sandbox import ChildLimits, Sandbox
        limits = ChildLimits(1024 * 1024 * 1024, 60, 60.0, 1)
        asyncio.run(Sandbox(limits).run({str(sleeper)!r}, []))
        """
    )
    worker = subprocess.Popen([sys.executable, "-c", parent], cwd=ROOT)
    try:
        wait_until(lambda: child_pid.exists() and child_pid.read_text() != "", what="the child")
        pid = int(child_pid.read_text())
        worker.kill()
        worker.wait()

        def gone() -> bool:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except FileNotFoundError:
                return True
            return state in ("Z", "X")

        wait_until(gone, timeout=10, what="the sandbox child to die with its parent")
    finally:
        worker.kill()
