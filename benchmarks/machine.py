"""What the machine did during a run: CPU by the processes we know, and the rest.

A benchmark figure is only as good as the machine was quiet. Every run samples
`/proc/stat` (all CPUs) and `/proc/PID/stat` (each process we started) at the
start and the end of the measured window, so the report can say how much CPU
the server, Redis and the load client used, and how much went to processes we
did not start: the *foreign* load, which on a shared machine is the first
suspect when figures move.
"""

from __future__ import annotations

import os
import platform
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Jiffies per second, the unit of /proc/stat and /proc/PID/stat.
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    """CPU time used so far: by the whole machine, and by each process we know."""

    #: time.monotonic() when sampled.
    at: float
    #: Jiffies all CPUs spent running processes (user + nice + system).
    busy: int
    #: Jiffies in interrupts and softirqs (loopback networking is mostly softirq).
    irq: int
    #: Jiffies the hypervisor gave our CPUs to someone else.
    steal: int
    #: Jiffies (user + system) of each process we know, by its role.
    processes: Mapping[str, int]


@dataclass(frozen=True)
class CpuAccount:
    """CPU used over a window, in cores (CPU-seconds per second)."""

    seconds: float
    #: Cores used by each process we know, by role (server, redis, client, runner).
    known: dict[str, float]
    #: Cores all processes used, ours or not.
    busy: float
    #: busy minus known: what processes we did not start used.
    foreign: float
    irq: float
    steal: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "known_cores": {role: round(cores, 3) for role, cores in self.known.items()},
            "busy_cores": round(self.busy, 3),
            "foreign_cores": round(self.foreign, 3),
            "irq_cores": round(self.irq, 3),
            "steal_cores": round(self.steal, 3),
        }


def process_ticks(pid: int) -> int | None:
    """utime + stime of ``pid`` (all its threads) in jiffies; None once it has exited."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after it are fixed.
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def sample(pids: Mapping[str, int]) -> CpuSample:
    """The machine's and each of ``pids``'s CPU time now."""
    with open("/proc/stat") as stat:
        first = stat.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    processes = {}
    for role, pid in pids.items():
        ticks = process_ticks(pid)
        if ticks is not None:
            processes[role] = ticks
    return CpuSample(
        at=time.monotonic(),
        busy=user + nice + system,
        irq=irq + softirq,
        steal=steal,
        processes=processes,
    )


def account(before: CpuSample, after: CpuSample) -> CpuAccount:
    """CPU used between two samples. A process missing from either sample
    (it exited, or was not running yet) counts as zero."""
    seconds = max(after.at - before.at, 1e-9)

    def cores(ticks: int) -> float:
        return ticks / CLOCK_TICKS / seconds

    known = {
        role: cores(after.processes[role] - before.processes[role])
        for role in before.processes
        if role in after.processes
    }
    busy = cores(after.busy - before.busy)
    return CpuAccount(
        seconds=seconds,
        known=known,
        busy=busy,
        # Never negative: per-process and machine counters are rounded to jiffies apart.
        foreign=max(0.0, busy - sum(known.values())),
        irq=cores(after.irq - before.irq),
        steal=cores(after.steal - before.steal),
    )


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    if match is None:
        raise RuntimeError(f"no VmRSS for pid {pid}")
    return int(match.group(1))


def describe() -> dict[str, Any]:
    """The machine the figures come from."""
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
