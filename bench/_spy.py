"""py-spy for the benchmarks: sample a child's every thread, native frames included, and summarise.

chdb inserts run on executor threads and in native code, so cProfile of the event loop's thread
misses half the story; py-spy sees both. Needs ``py-spy`` (not a project dependency) beside the venv's
python or on PATH.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

_WAITING = (
    "pthread_cond",
    "epoll_wait",
    "SimpleQueue_get",
    "select_epoll_poll",
    "PyThread_acquire_lock_timed",
    "Condition.wait",
)


def start_spy(pid: int, out: str) -> subprocess.Popen[bytes]:
    """Start sampling ``pid`` at 50 Hz into collapsed stacks at ``out``."""
    beside = Path(sys.executable).parent / "py-spy"
    py_spy = str(beside) if beside.exists() else shutil.which("py-spy") or str(beside)
    cmd = [py_spy, "record", "--pid", str(pid), "--native", "--threads", "-r", "50", "-f", "raw", "-o", out]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_spy(spy: subprocess.Popen[bytes], out: str, top: int = 25) -> None:
    """Stop sampling (py-spy writes its file on SIGINT only) and print where the busy samples were."""
    spy.send_signal(signal.SIGINT)
    spy.wait(timeout=60)
    by_thread: Counter[str] = Counter()
    by_frame: Counter[str] = Counter()
    for line in Path(out).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if any(w in "".join(frames[-6:]) for w in _WAITING):
            continue  # a thread waiting is not a thread working
        thread = frames[0].split(":")[-1].strip()
        python = [f for f in frames if ".py:" in f]
        innermost = python[-1] if python else frames[-1]
        leaf = frames[-1] if "gc_collect" in frames[-1] else innermost
        by_thread[thread] += int(count)
        by_frame[f"{thread}: {leaf[:110]}"] += int(count)
    busy = sum(by_thread.values()) or 1
    print(f"py-spy busy samples: {busy} ({out})")
    for thread, n in by_thread.most_common(6):
        print(f"  {n / busy:6.1%}  thread {thread}")
    for frame, n in by_frame.most_common(top):
        print(f"  {n / busy:6.1%}  {frame}")
