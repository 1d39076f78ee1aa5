"""Process-wide runtime tuning shared by the long-running entry points."""

from __future__ import annotations

import ctypes
import gc
import os
import sys
from collections.abc import Callable

# Decoding one Kafka record allocates thousands of small lists (one per [time, value] pair), so
# CPython's default gen-0 threshold of 700 runs a collection several times per record and, every
# hundred of them, a full one over every live object. Measured on the processor benchmark, that was
# half the event loop's CPU. None of these lists form cycles; a larger gen-0 budget keeps the
# collector for the objects that do.
GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Freeze start-up objects out of the collector's view and raise the gen-0 threshold."""
    gc.collect()
    gc.freeze()  # modules, settings, faust's service graph: never garbage, never rescanned
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)


# The processor inserts a batch from a worker thread (clickhouse-connect serialises it in Python, then
# chdb runs it without the GIL) while the event loop decodes the next one. With CPython's default
# 5 ms switch interval each hand-over of the GIL to the insert thread waits out a slice of the busy
# loop: inserts took 0.27 s of wall time for 0.12 s of work (bench/processor.py). At 0.5 ms they
# wait a tenth as long, for a slightly busier loop (it hands the GIL over more often).
SWITCH_INTERVAL_S = 0.0005


def shorten_gil_switch() -> None:
    """Hand the GIL between threads every ``SWITCH_INTERVAL_S`` instead of every 5 ms."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def without_modules(names: tuple[str, ...]) -> list[str]:
    """Make ``import name`` raise ImportError for each of ``names`` not imported yet (Python's own
    rule for a ``None`` in ``sys.modules``); returns those it blocked. For optional imports a library
    makes on its own and this process never uses (chdb imports pyarrow if installed)."""
    blocked = [name for name in names if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    return blocked


# mallopt(3) parameters (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def tune_malloc(*, mmap_threshold: int, arena_max: int) -> bool:
    """Fix glibc's mmap threshold (0: keep its sliding one) and cap its arenas (0: glibc's 8 a core).

    glibc's threshold slides up to the largest block freed (32 MiB at most), after which a Kafka
    fetch's buffers, record values and insert blocks are carved from the heaps, where what they free
    stays resident (the free part of the processor's heaps: 40-105 MB in bench/processor.py). A fixed
    threshold maps each large block on its own and unmaps it when freed. Each thread that mallocs
    (the insert and query threads) gets an arena of its own up to the cap, each keeping its own free
    memory. False where the C library has no ``mallopt`` (musl)."""
    if _MALLOPT is None:
        return False
    if mmap_threshold:
        _MALLOPT(M_MMAP_THRESHOLD, mmap_threshold)
    if arena_max:
        _MALLOPT(M_ARENA_MAX, arena_max)
    return True


def _mallopt() -> Callable[[int, int], int] | None:
    try:
        mallopt: Callable[[int, int], int] = ctypes.CDLL(None).mallopt
        return mallopt
    except (OSError, AttributeError):
        return None


_MALLOPT = _mallopt()


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
        return trim
    except (OSError, AttributeError):  # not glibc (musl has none): nothing to trim
        return None


_MALLOC_TRIM = _malloc_trim()


def trim_heap() -> bool:
    """Give the C heap's free pages back to the system after a peak (glibc keeps them otherwise: a
    producer that recovered every site's state at start-up, or took over half the sites, stayed at
    that peak's RSS for good). False where the C library has no ``malloc_trim``."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


# The environment variable chdb's jemalloc reads its options from: the library is built with the je_
# prefix, so the unprefixed MALLOC_CONF reaches glibc's malloc only (and is ignored there).
ENGINE_MALLOC_CONF_VAR = "JE_MALLOC_CONF"


def tune_engine_malloc(conf: str) -> bool:
    """Give the embedded engine's jemalloc ``conf`` (its ``name:value,...`` options), which it reads once
    as the library loads; False when ``conf`` is empty (the variable stays as the environment has it)
    or the engine is loaded already (too late)."""
    if not conf or "chdb" in sys.modules:
        return False
    os.environ[ENGINE_MALLOC_CONF_VAR] = conf
    return True


# madvise(2) advice (Linux 5.4+): reclaim the range's pages now. Clean file pages are dropped (read back
# from the file if touched again); pages the process wrote stay (they would need swap).
MADV_PAGEOUT = 21
# The embedded engine's shared object (chdb/_chdb.abi3.so), as /proc/self/maps names it.
ENGINE_LIBRARY = "/chdb/_chdb"


def release_library_pages(path_fragment: str) -> int:
    """Page out the read-only file mappings whose path contains ``path_fragment``; returns the bytes
    mapped there (what was resident of them is less).

    Loading chdb makes 173 MB of its library resident, mostly code that runs once, at start-up; what
    the engine runs afterwards faults back in from the page cache as it is touched (bench/processor.py:
    the library's resident share at the peak 104-106 MB against 194-196). The kernel skips pages
    another process maps too. 0 where there is no /proc or no madvise, or the kernel refuses."""
    if _MADVISE is None:
        return 0
    released = 0
    for start, end in _read_only_file_mappings(path_fragment):
        if _MADVISE(start, end - start, MADV_PAGEOUT) == 0:
            released += end - start
    return released


def _read_only_file_mappings(path_fragment: str) -> list[tuple[int, int]]:
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            lines = maps.readlines()
    except OSError:  # not Linux
        return []
    ranges = []
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and "w" not in fields[1] and path_fragment in fields[5]:
            start, end = fields[0].split("-")
            ranges.append((int(start, 16), int(end, 16)))
    return ranges


def _madvise() -> Callable[[int, int, int], int] | None:
    try:
        madvise = ctypes.CDLL(None).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    typed: Callable[[int, int, int], int] = madvise
    return typed


_MADVISE = _madvise()
