"""Runtime tuning: frozen start-up objects, wider gen-0 collections, a shorter GIL switch, heap trims,
the C allocators' options."""

from __future__ import annotations

import hashlib
import mmap
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamer import runtime
from streamer.runtime import ENGINE_MALLOC_CONF_VAR, GEN0_THRESHOLD, SWITCH_INTERVAL_S
from tests.procfs import resident_bytes


def test_tune_gc_freezes_and_raises_gen0_threshold() -> None:
    """After tune_gc() the start-up objects are frozen and gen 0 collects every GEN0_THRESHOLD allocations."""
    code = (
        "import gc; from streamer.runtime import tune_gc; before = gc.get_threshold(); tune_gc(); "
        "after = gc.get_threshold(); "
        "print(after[0], after[1:] == before[1:], gc.get_freeze_count() > 1000)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == [str(GEN0_THRESHOLD), "True", "True"]
    assert GEN0_THRESHOLD > 700  # CPython's default, which made decoding half GC


def test_shorten_gil_switch_sets_the_interval() -> None:
    """After shorten_gil_switch() threads hand the GIL over every SWITCH_INTERVAL_S, not every 5 ms."""
    code = (
        "import sys; from streamer.runtime import shorten_gil_switch; shorten_gil_switch(); "
        "print(sys.getswitchinterval())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert float(out) == SWITCH_INTERVAL_S < 0.005


def test_trim_heap_gives_the_c_heaps_free_pages_back() -> None:
    """On glibc (this machine, the Docker image) trim_heap calls malloc_trim: after freeing a peak of
    C-heap allocations the process's resident memory falls by most of it."""
    code = (
        "import ctypes, gc; from streamer.runtime import trim_heap\n"
        "def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096\n"
        "libc = ctypes.CDLL(None); libc.malloc.restype = ctypes.c_void_p\n"
        "libc.free.argtypes = [ctypes.c_void_p]\n"
        # Each 64 KiB block pinned by a small one after it: the freed blocks are holes that glibc's
        # own trim of the heap's top never returns.
        "pairs = [(libc.malloc(65536), libc.malloc(64)) for _ in range(3_000)]\n"
        "for b, _ in pairs: ctypes.memset(b, 1, 65536)\n"
        "for b, _ in pairs: libc.free(b)\n"
        "before = rss(); ok = trim_heap(); after = rss()\n"
        "print(ok, (before - after) // 2**20)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    ok, freed_mb = out.split()
    assert ok == "True"
    assert int(freed_mb) >= 150  # of the ~190 MB freed


_MMAPPED_AFTER_A_BIG_FREE = """
import ctypes, sys
from streamer.runtime import tune_malloc
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6"); libc.mallinfo2.restype = Info
if sys.argv[1] == "tuned":
    print(tune_malloc(mmap_threshold=131072, arena_max=2))
big = bytearray(8 << 20); del big  # glibc's sliding threshold rises to 8 MiB when this is freed
block = bytearray(1 << 20)
print(libc.mallinfo2().hblkhd >= 1 << 20)
"""


@pytest.mark.parametrize(("mode", "mapped"), [("tuned", ["True", "True"]), ("default", ["False"])])
def test_tune_malloc_keeps_large_blocks_mapped_apart(mode: str, mapped: list[str]) -> None:
    """With the threshold fixed, a 1 MiB block is mapped on its own (unmapped when freed) even after
    a larger block was freed; glibc's sliding threshold carves it from the heap instead."""
    args = [sys.executable, "-c", _MMAPPED_AFTER_A_BIG_FREE, mode]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    assert out.split() == mapped


def test_tune_malloc_with_zeros_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """0 keeps glibc's own behaviour: mallopt is not called for that parameter."""
    calls: list[tuple[int, int]] = []

    def mallopt(param: int, value: int) -> int:
        calls.append((param, value))
        return 1

    monkeypatch.setattr(runtime, "_MALLOPT", mallopt)
    assert runtime.tune_malloc(mmap_threshold=0, arena_max=0)
    assert calls == []
    runtime.tune_malloc(mmap_threshold=4096, arena_max=3)
    assert calls == [(runtime.M_MMAP_THRESHOLD, 4096), (runtime.M_ARENA_MAX, 3)]


def test_the_embedded_engine_runs_without_the_modules_the_processor_blocks() -> None:
    """After without_modules(UNUSED_MODULES) chdb opens and answers, and pyarrow was never loaded."""
    code = (
        "import sys; from streamer.runtime import without_modules; "
        "from streamer.processor.cli import UNUSED_MODULES; print(without_modules(UNUSED_MODULES)); "
        "import chdb; print(chdb.connect(':memory:').query('SELECT 6*7', 'CSV').bytes().decode().strip()); "
        "print(sys.modules['pyarrow'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["['pyarrow']", "42", "None"]


_ENGINE_ARENAS = """
import sys
from pathlib import Path
from streamer.runtime import tune_engine_malloc
applied = tune_engine_malloc(sys.argv[1])
import chdb
stats = chdb.query("SELECT stats FROM system.jemalloc_stats", "TSVRaw").bytes().decode()
options = dict(line.split(": ", 1) for line in stats.splitlines() if line.startswith("  opt."))
late = tune_engine_malloc("narenas:3")
print(applied, options["  opt.narenas"], options["  opt.dirty_decay_ms"].split()[0], late)
"""


@pytest.mark.parametrize(
    ("conf", "seen"),
    [
        ("narenas:1,percpu_arena:disabled,dirty_decay_ms:1000", ["True", "1", "1000", "False"]),
        ("", ["False", str(len(os.sched_getaffinity(0))), "5000", "False"]),  # the build's: an arena a CPU
    ],
)
def test_the_engine_runs_with_the_jemalloc_options_given_before_it_loads(conf: str, seen: list[str]) -> None:
    """The engine's jemalloc takes the options set before chdb is imported; once loaded, nothing changes."""
    env = {k: v for k, v in os.environ.items() if k != ENGINE_MALLOC_CONF_VAR}
    args = [sys.executable, "-c", _ENGINE_ARENAS, conf]
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == seen


def test_release_library_pages_drops_a_read_only_mapping_and_keeps_its_contents(tmp_path: Path) -> None:
    """A read-only private file mapping touched in full is resident; after release_library_pages it
    holds a fraction of that, and reading it back gives the same bytes."""
    library = tmp_path / "libfake.so"
    content = os.urandom(16 << 20)
    library.write_bytes(content)
    with library.open("rb") as file:
        os.fsync(file.fileno())  # clean pages: what a library on disk has
        mapped = mmap.mmap(file.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    try:
        assert hashlib.sha256(mapped).digest() == hashlib.sha256(content).digest()  # touches every page
        before = resident_bytes("self", str(library))
        released = runtime.release_library_pages("libfake.so")
        after = resident_bytes("self", str(library))
        assert released == len(content)
        assert before >= 15 << 20
        assert after <= 1 << 20
        assert hashlib.sha256(mapped).digest() == hashlib.sha256(content).digest()
    finally:
        mapped.close()


def test_release_library_pages_leaves_writable_mappings_and_other_paths_alone(tmp_path: Path) -> None:
    """Only read-only mappings of a matching path are paged out: a writable one stays resident."""
    data = tmp_path / "libwritable.so"
    data.write_bytes(os.urandom(8 << 20))
    with data.open("r+b") as file:
        mapped = mmap.mmap(file.fileno(), 0, flags=mmap.MAP_PRIVATE)
    try:
        hashlib.sha256(mapped).digest()
        assert runtime.release_library_pages("libwritable.so") == 0
        assert runtime.release_library_pages("no-such-library-anywhere") == 0
        assert resident_bytes("self", str(data)) >= 7 << 20
    finally:
        mapped.close()
