"""Where a benchmark child's memory goes, over time: ``python bench/_memwatch.py OUT -m streamer.cli ...``.

Runs the module as ``python -m`` would, with a daemon thread that appends a JSON line to ``OUT`` every
``BENCH_MEMWATCH_EVERY`` seconds (default 30): RSS split into anonymous and file-backed
(/proc/self/status), glibc's heap (``mallinfo2``: in use, free, mmapped), Python's allocated blocks,
the live objects by type (the 25 most numerous, from ``gc.get_objects``) and, with
``BENCH_MEMWATCH_TRACE=1``, tracemalloc's biggest growths by line since the first snapshot
(slows the child several times: for finding a leak, not for figures). A processor child also gets the
embedded engine's own figures through its SQL endpoint (``STREAMER_PROCESSOR_WEB_PORT``): jemalloc's
allocated / resident / retained MB, MemoryTracking and every non-empty cache. bench/portfolio.py wraps its
children with it when ``BENCH_MEMWATCH`` names a directory. Debugging only, Linux only.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import runpy
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

from _smaps import jemalloc_mb  # this file runs as a script: bench/ is sys.path[0]


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _mallinfo() -> dict[str, float]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    mb = 1 << 20
    return {
        "malloc_arena": info.arena / mb,
        "malloc_inuse": info.uordblks / mb,
        "malloc_free": info.fordblks / mb,
        "malloc_mmap": info.hblkhd / mb,
    }


def _obmalloc() -> dict[str, float]:
    """Python's own allocator (sys._debugmallocstats, which writes to fd 2): its arenas' MB, the MB in
    allocated blocks, and the MB of free blocks and empty pools held in those arenas."""
    with tempfile.TemporaryFile("w+") as out:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read()
    figures: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.rpartition("=")
        name = name.strip()
        if name.startswith("# bytes in allocated blocks"):
            figures["py_allocated"] = int(value.replace(",", "")) / (1 << 20)
        elif name.startswith("# bytes in available blocks"):
            figures["py_free_blocks"] = int(value.replace(",", "")) / (1 << 20)
        elif "unused pools" in name:
            figures["py_unused_pools"] = int(value.replace(",", "")) / (1 << 20)
        elif "bytes/arena" in name:
            figures["py_arenas"] = int(value.replace(",", "")) / (1 << 20)
    return figures


def _status() -> dict[str, float]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "RssAnon", "RssFile", "Threads"):
            value = int(line.split()[1])
            out[key] = value if key == "Threads" else value / 1024
    return out


_ENGINE_SQL = (
    "SELECT metric, value FROM system.metrics WHERE metric = 'MemoryTracking'"
    " OR (metric LIKE '%CacheBytes' AND value > 0)"
)


def _engine() -> dict[str, float]:
    """The embedded engine's figures (MB) from the child's own SQL endpoint; {} when it has none."""
    import httpx  # here: only a processor child has an engine to ask

    port = os.environ.get("STREAMER_PROCESSOR_WEB_PORT")
    if not port or "streamer.processor" not in sys.modules:
        return {}
    url = f"http://127.0.0.1:{port}/api/v1/sql"
    figures: dict[str, float] = {}
    try:
        stats = httpx.post(url, json={"sql": "SELECT stats FROM system.jemalloc_stats"}, timeout=10).json()
        for name, mb in jemalloc_mb(str(stats["rows"][0][0])).items():
            if name in ("allocated", "resident", "retained", "mapped"):
                figures[f"je_{name}"] = mb
        for metric, value in httpx.post(url, json={"sql": _ENGINE_SQL}, timeout=10).json()["rows"]:
            figures[f"ch_{metric}"] = float(value) / 1e6
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
        return figures
    return figures


def _types(top: int = 25) -> dict[str, int]:
    counts = Counter(type(o).__name__ for o in gc.get_objects())
    return dict(counts.most_common(top))


def _watch(out: Path, every: float, trace: bool) -> None:
    first = tracemalloc.take_snapshot() if trace else None
    started = time.monotonic()
    while True:
        time.sleep(every)
        record: dict[str, Any] = {"t": round(time.monotonic() - started, 1), "wall": time.time()}
        record.update(_status())
        record.update(_mallinfo())
        record.update(_obmalloc())
        record.update(_engine())
        record["blocks"] = sys.getallocatedblocks()
        record["gc_objects"] = len(gc.get_objects())
        record["types"] = _types()
        if first is not None:
            stats = tracemalloc.take_snapshot().compare_to(first, "lineno")
            record["growth"] = [
                [str(s.traceback[0]), round(s.size_diff / 1024), s.count_diff] for s in stats[:15]
            ]
        with out.open("a") as f:
            f.write(json.dumps(record) + "\n")


def main() -> None:
    out, flag, module, *rest = sys.argv[1:]
    assert flag == "-m", "usage: _memwatch.py OUT -m MODULE [ARGS]"
    trace = os.environ.get("BENCH_MEMWATCH_TRACE") == "1"
    if trace:
        tracemalloc.start(1)
    every = float(os.environ.get("BENCH_MEMWATCH_EVERY", "30"))
    threading.Thread(target=_watch, args=(Path(out), every, trace), daemon=True).start()
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
