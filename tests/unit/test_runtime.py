"""Runtime tuning: frozen start-up objects, wider gen-0 collections, a shorter GIL switch interval."""

from __future__ import annotations

import subprocess
import sys

from streamer.runtime import GEN0_THRESHOLD, SWITCH_INTERVAL_S


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
