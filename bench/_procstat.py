"""CPU and RSS of processes, read from /proc, for the benchmarks (Linux only).

``cpu_s(pid)`` is utime + stime of every thread of a live process; a child that has exited is measured
by ``os.wait4``'s rusage instead (``wait_cpu``). ``listener_pid(port)`` finds the process listening on a
local TCP port (the Kafka broker, whoever started it) through the socket's inode. ``Sampler`` samples
CPU and RSS (VmRSS) of child processes every few seconds for the long benchmarks; "flat" is judged over
a window by the least-squares slope and by the mean of its first minute against its last.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads) so far, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # fields 14 and 15 of proc(5)


def wait_cpu(proc: subprocess.Popen[Any]) -> tuple[int, float]:
    """Reap ``proc``; returns its exit code and the CPU seconds it (and its reaped children) used."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def listener_pid(port: int) -> int | None:
    """The pid of the process listening on 127.0.0.1/any ``port`` over TCP, if this user can see it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{parts[9]}]")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def read_proc(pid: int) -> tuple[float, float] | None:
    """(CPU seconds, RSS MB) of ``pid`` now; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rpartition(")")[2].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14 and 15 of stat)
    rss_kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return cpu, rss_kb / 1024


@dataclass
class Series:
    """One process's samples: (monotonic time, CPU s, RSS MB)."""

    name: str
    pid: int
    points: list[tuple[float, float, float]] = field(default_factory=list)

    def sample(self) -> None:
        got = read_proc(self.pid)
        if got is not None:
            self.points.append((time.monotonic(), *got))

    def cpu_between(self, start: float, end: float) -> float:
        """CPU seconds used from the sample nearest ``start`` to the one nearest ``end``."""
        inside = [p for p in self.points if start <= p[0] <= end]
        return inside[-1][1] - inside[0][1] if len(inside) > 1 else 0.0

    def rss_report(self, start: float, end: float) -> dict[str, float]:
        """Peak and final RSS of the whole run; over [start, end]: slope (MB/min), first and last minute's
        mean, and the lowest RSS of the first and last two minutes (``floor_first``, ``floor_last``):
        a live worker's RSS swings by tens of MB with the batches in flight, and a leak raises the
        floor under those swings as well as the slope."""
        rss = [p[2] for p in self.points]
        inside = [(t, r) for t, _, r in self.points if start <= t <= end]
        report = {"peak": max(rss, default=0.0), "final": rss[-1] if rss else 0.0}
        if len(inside) < 3:
            return {**report, "slope": 0.0, "first": 0.0, "last": 0.0, "floor_first": 0.0, "floor_last": 0.0}
        first = [r for t, r in inside if t < start + 60]
        last = [r for t, r in inside if t > end - 60]
        return {
            **report,
            "slope": _slope(inside) * 60,
            "first": sum(first) / len(first),
            "floor_first": min(r for t, r in inside if t < start + 120),
            "floor_last": min(r for t, r in inside if t > end - 120),
            "last": sum(last) / len(last),
        }


def _slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mr = sum(r for _, r in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (r - mr) for t, r in points) / var if var else 0.0


class Sampler:
    """Samples every series every ``every_s`` seconds until cancelled."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.series: list[Series] = []

    def watch(self, name: str, pid: int) -> None:
        self.series.append(Series(name, pid))

    def sample_all(self) -> None:
        for series in self.series:
            series.sample()

    async def run(self) -> None:
        while True:
            self.sample_all()
            await asyncio.sleep(self.every_s)
