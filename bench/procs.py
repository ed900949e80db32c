"""What each process of the stack costs: CPU time from ``/proc/<pid>/stat``, peak RSS (``VmHWM``) from
``/proc/<pid>/status``. PostgreSQL is the postmaster and all its children (backends, WAL writer, checkpointer...)."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

PidSource = Callable[[], list[int]]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far; 0 for a process that is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # The command name (field 2) may hold spaces: count fields from its closing parenthesis.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _status_kib(pid: int, field: str) -> int:
    """One ``kB`` field of ``/proc/<pid>/status`` (0 for a process that is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def peak_rss_mib(pid: int) -> float:
    """``VmHWM``: the most resident memory the process has had, in MiB (0 for a process that is gone)."""
    return _status_kib(pid, "VmHWM") / 1024


def rss_kib(pid: int) -> int:
    """``VmRSS``: the resident memory of the process now, in KiB (0 for a process that is gone)."""
    return _status_kib(pid, "VmRSS")


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft limit of open files to ``wanted`` (as far as the hard limit allows; never lower
    it). Processes started afterwards inherit it. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, wanted if hard == resource.RLIM_INFINITY else min(wanted, hard))
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def open_sockets(pid: int) -> int:
    """How many sockets the process holds open (listening, accepted and outgoing)."""
    fd_dir = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in fd_dir.iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except FileNotFoundError:
            continue
    return count


def children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def with_children(pid: int) -> list[int]:
    return [pid, *children(pid)]


@dataclass
class CpuSnapshot:
    wall: float
    per_pid: dict[str, dict[int, float]]


@dataclass
class ProcessGroups:
    """Named groups of processes (``gateway``, ``postgres``...), each re-listed at every sample because PostgreSQL
    backends come and go."""

    groups: Mapping[str, PidSource]
    peak_rss: dict[str, float] = field(default_factory=dict)

    def cpu_snapshot(self) -> CpuSnapshot:
        return CpuSnapshot(
            time.monotonic(),
            {name: {pid: cpu_seconds(pid) for pid in pids()} for name, pids in self.groups.items()},
        )

    def sample_memory(self) -> None:
        """Keep the largest ``VmHWM`` seen in each group (for PostgreSQL: its largest process, since every backend's
        figure counts the shared buffers it touched and a sum would count them many times)."""
        for name, pids in self.groups.items():
            largest = max((peak_rss_mib(pid) for pid in pids()), default=0.0)
            self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), largest)


def cpu_share(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU used by each group between two snapshots, as a fraction of one core (2.0 = both cores of a 2-core box).
    A process started in between counts from zero; one that ended in between is missed."""
    wall = after.wall - before.wall
    shares = {}
    for name, pids in after.per_pid.items():
        earlier = before.per_pid.get(name, {})
        used = sum(seconds - earlier.get(pid, 0.0) for pid, seconds in pids.items())
        shares[name] = round(used / wall, 3) if wall > 0 else 0.0
    return shares
