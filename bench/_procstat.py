"""CPU seconds of processes, read from /proc, for the benchmarks (Linux only).

``cpu_s(pid)`` is utime + stime of every thread of a live process; a child that has exited is measured
by ``os.wait4``'s rusage instead (``wait_cpu``). ``listener_pid(port)`` finds the process listening on a
local TCP port (the Kafka broker, whoever started it) through the socket's inode.
"""

from __future__ import annotations

import os
import subprocess
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
