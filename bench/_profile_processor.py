"""``streamer processor`` under cProfile (main thread); the profile is written at exit. Used by
``bench/processor.py --profile FILE``."""

from __future__ import annotations

import atexit
import cProfile
import sys

from streamer.cli import main

profiler = cProfile.Profile()
atexit.register(lambda: profiler.dump_stats(sys.argv[1]))
profiler.enable()
main(["processor"])
