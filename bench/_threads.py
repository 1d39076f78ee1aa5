"""CPU seconds per thread name of a process, from /proc (Linux): chdb names its threads
(MergeMutate for background merges), so this splits the engine's work from Python's."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def thread_cpu(pid: int) -> dict[str, float]:
    """User + system CPU seconds so far, summed per thread name; the main thread is ``main``."""
    by_name: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread may end while we read
            name = "main" if task.name == str(pid) else (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            by_name[name] = by_name.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return by_name
