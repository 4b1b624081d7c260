"""CPU time of server processes, read from /proc: what a request costs the server, measured on
the server's side rather than inferred from a client's wall clock (which on a shared 2-core box
mostly measures the client and the scheduler).

A process's CPU is utime + stime of /proc/<pid>/stat; its children's CPU counts too: live
descendants (uvicorn's worker processes, image-verification children) are found by walking
/proc, and exited ones show up in their parent's cutime + cstime."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # /proc times are in these (100/s on Linux: 10 ms)


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    cpu_ticks: int  # utime + stime + cutime + cstime


def read_stat(pid: int) -> ProcStat | None:
    """One process's parent and CPU ticks; None if it is gone. The command name (field 2) may
    hold spaces and parentheses, so fields are counted from the last ')'."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    return ProcStat(pid, int(fields[1]), sum(int(f) for f in fields[11:15]))


def all_stats() -> list[ProcStat]:
    stats = (read_stat(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit())
    return [s for s in stats if s is not None]


def tree_cpu_seconds(roots: Iterable[int]) -> float:
    """CPU seconds used so far by the processes `roots` and all their live descendants (and,
    through cutime/cstime, the descendants that exited and were waited for)."""
    stats = all_stats()
    children: dict[int, list[ProcStat]] = {}
    by_pid = {s.pid: s for s in stats}
    for stat in stats:
        children.setdefault(stat.ppid, []).append(stat)
    ticks = 0
    todo = [by_pid[r] for r in roots if r in by_pid]
    while todo:
        stat = todo.pop()
        ticks += stat.cpu_ticks
        todo += children.get(stat.pid, [])
    return ticks / CLOCK_TICKS


def tree_pids(root: int) -> list[int]:
    """`root` and its live descendants (to count an API's worker processes)."""
    stats = all_stats()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += [s.pid for s in stats if s.ppid == pid]
    return found


def machine_ticks() -> tuple[int, int, int]:
    """(busy, steal, total) CPU ticks of the whole machine so far, from /proc/stat's first
    line: user nice system idle iowait irq softirq steal (guest time is counted in user)."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return sum(ticks) - idle - ticks[7], ticks[7], sum(ticks)


class CpuMeter:
    """CPU seconds of named process trees over an interval: `start()`, run the load, `stop()`;
    then `seconds[name]` is what each tree used in between, and `machine_cores` /
    `steal_cores` how many cores the whole machine was busy / had stolen by the hypervisor
    (what no process of ours accounts for: other processes, interrupts, a noisy neighbour)."""

    def __init__(self, trees: dict[str, list[int]]) -> None:
        self._trees = trees
        self._before: dict[str, float] = {}
        self._machine = (0, 0, 0)
        self.seconds: dict[str, float] = {}
        self.machine_cores = 0.0
        self.steal_cores = 0.0

    def start(self) -> None:
        self._before = {name: tree_cpu_seconds(pids) for name, pids in self._trees.items()}
        self._machine = machine_ticks()

    def stop(self) -> None:
        now = machine_ticks()
        busy, steal, total = (now[i] - self._machine[i] for i in range(3))
        self.seconds = {
            name: tree_cpu_seconds(pids) - self._before[name] for name, pids in self._trees.items()
        }
        cores = os.cpu_count() or 1
        self.machine_cores = busy / max(1, total) * cores
        self.steal_cores = steal / max(1, total) * cores

    def machine(self) -> str:
        """The machine's use of its cores over the interval, for a person."""
        cores = os.cpu_count() or 1
        return (
            f"machine busy {self.machine_cores:.2f} of {cores} cores"
            f"{f', {self.steal_cores:.2f} stolen' if self.steal_cores >= 0.01 else ''}"
        )


def busy_cores(seconds: float = 1.0) -> float:
    """How many cores' worth of CPU the whole machine used over `seconds`: other work on the
    box when a benchmark starts skews its throughput figures."""
    meter = CpuMeter({})
    meter.start()
    time.sleep(seconds)
    meter.stop()
    return meter.machine_cores
