"""Process-wide runtime tuning shared by the long-running entry points."""

from __future__ import annotations

import gc

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
