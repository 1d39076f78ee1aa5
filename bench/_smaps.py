"""Where a process's resident memory sits, by kind of mapping (/proc/PID/smaps): ``breakdown(pid)``.

- ``chdb.so``: resident pages of chdb's library file (its code and read-only data, shared, clean);
  ``chdb.so dirty``: its pages written since (relocations, static data: anonymous copies);
- ``files``: every other mapped file (python, other extension modules);
- ``heap``: glibc's main arena (``[heap]``, the brk area: Python objects over 512 bytes, most C mallocs
  of the event loop's thread);
- ``arenas``: glibc's thread arenas (64 MiB-aligned reservations: what threads other than the main one
  malloc, e.g. the insert and query threads of clickhouse-connect and the engine's C++ in libc calls);
- ``stacks``: thread stacks (an anonymous mapping right above a 4 KiB no-access guard page);
- ``anon``: every other anonymous mapping (Python's obmalloc arenas, glibc's mmapped chunks of
  128 KiB and more, the engine's jemalloc extents).

``jemalloc_mb(stats)``: the summary line of the engine's ``system.jemalloc_stats`` in MB.

Debugging aid of bench/processor.py (``--smaps``) and bench/_memwatch.py; Linux only.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

ARENA_ALIGN = 64 << 20  # glibc's HEAP_MAX_SIZE on 64-bit: thread arenas are reserved at this alignment
GUARD = 4096


def _mappings(pid: int) -> list[tuple[int, int, str, str, dict[str, int]]]:
    """(start, end, perms, path, {field: kB}) of every mapping."""
    out: list[tuple[int, int, str, str, dict[str, int]]] = []
    current: dict[str, int] | None = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(None, 5)
        if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            start, _, end = head[0].partition("-")
            current = {}
            path = head[5] if len(head) > 5 else ""
            out.append((int(start, 16), int(end, 16), head[1], path, current))
        elif current is not None and head[0].endswith(":") and len(head) >= 2 and head[1].isdigit():
            current[head[0][:-1]] = int(head[1])
    return out


def _is_arena(start: int, end: int, perms: str, reserved: dict[int, int]) -> bool:
    """A glibc heap: 64 MiB-aligned, its used part followed by a no-access reservation up to
    ``ARENA_ALIGN`` (``reserved``: start -> end of the no-access mappings), or the whole of it."""
    if start % ARENA_ALIGN or not perms.startswith("rw"):
        return False
    return end - start == ARENA_ALIGN or reserved.get(end, 1 << 64) - start <= ARENA_ALIGN


def top_files(pid: int, n: int = 5) -> list[tuple[str, int]]:
    """The ``n`` mapped files (other than chdb's library) with the most resident kB."""
    by_path: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for _, _, _, path, fields in _mappings(pid):
            if path.startswith("/") and not path.endswith("_chdb.abi3.so"):
                by_path[path] = by_path.get(path, 0) + fields.get("Rss", 0)
    return sorted(by_path.items(), key=lambda kv: -kv[1])[:n]


def breakdown(pid: int) -> dict[str, int]:
    """Resident kB by kind of mapping (module docstring); empty when the process is gone."""
    try:
        maps = _mappings(pid)
    except OSError:
        return {}
    parts: dict[str, int] = {}
    reserved = {start: end for start, end, perms, _, _ in maps if perms.startswith("---")}

    def add(kind: str, kb: int) -> None:
        parts[kind] = parts.get(kind, 0) + kb

    previous_end, previous_guard = -1, False
    for start, end, perms, path, fields in maps:
        rss = fields.get("Rss", 0)
        guard_below = previous_guard and previous_end == start
        previous_end, previous_guard = end, perms.startswith("---") and end - start == GUARD
        if path.endswith("_chdb.abi3.so"):
            add("chdb.so", fields.get("Shared_Clean", 0) + fields.get("Private_Clean", 0))
            add("chdb.so dirty", fields.get("Private_Dirty", 0) + fields.get("Shared_Dirty", 0))
        elif path == "[heap]":
            add("heap", rss)
        elif path.startswith("/"):
            add("files", rss)
        elif path.startswith("["):
            add(path, rss)
        elif guard_below:
            add("stacks", rss)
        elif _is_arena(start, end, perms, reserved):
            add("arenas", rss)
        else:
            add("anon", rss)
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                parts["threads"] = int(line.split()[1])
    return parts


def jemalloc_mb(stats: str) -> dict[str, float]:
    """MB by name (allocated, active, metadata, resident, mapped, retained) from the ``Allocated: ...``
    line of ``SELECT stats FROM system.jemalloc_stats``; {} without one."""
    line = next((ln for ln in stats.splitlines() if ln.startswith("Allocated:")), "")
    figures: dict[str, float] = {}
    for part in line.split(","):
        name, _, value = part.strip().partition(": ")
        with contextlib.suppress(ValueError):
            figures[name.lower()] = int(value) / 1e6
    return figures
