"""CPU time of a server's whole process tree (supervisor + workers), for CPU per request.

`tree_cpu_seconds(pid)` sums user + system time of the process and all its live descendants, plus the time
of descendants they already reaped (`children_user`/`children_system`), so a worker that exits between
two samples does not make the sum go backwards. Sample before and after a load run: ΔCPU / requests is
the server's CPU per request, ΔCPU / wall seconds the cores it used.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import psutil


def _own_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and every descendant; processes that vanish are skipped."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return float("nan")
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            total += _own_seconds(proc)
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine was busy (all cores, every process; steal counts as busy)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)


MACHINE = "machine"  # CpuMeter name for the whole machine


@dataclass
class CpuSample:
    """The CPU one process tree used during one load run."""

    seconds: float  # ΔCPU, user + system
    requests: int
    wall_s: float

    @property
    def ms_per_request(self) -> float | None:
        return self.seconds * 1000 / self.requests if self.requests > 0 and self.seconds == self.seconds else None

    @property
    def cores(self) -> float | None:
        """Average cores busy during the run."""
        return self.seconds / self.wall_s if self.wall_s > 0 and self.seconds == self.seconds else None


class CpuMeter:
    """Samples several process trees at once: `start()` before a run, `stop()` after."""

    def __init__(self, pids: dict[str, int | None], *, machine: bool = False) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid is not None}
        self.machine = machine  # also sample the whole machine's busy time (as MACHINE)
        self._before: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        out = {name: tree_cpu_seconds(pid) for name, pid in self.pids.items()}
        if self.machine:
            out[MACHINE] = machine_busy_seconds()
        return out

    def start(self) -> None:
        self._before = self._sample()

    def stop(self) -> dict[str, float]:
        """CPU seconds each tree (and the machine) used since `start()`."""
        return {name: value - self._before[name] for name, value in self._sample().items()}
