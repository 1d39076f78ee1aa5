"""Sample-time parsing: the processor's memo (``TimeCache``) against the generic parser (``iso_to_ms``).

Times shaped as the simulator serves them (one day of 1-minute samples for 500 points at their own
phases, zones ``Z``/``+00:00``/``+02:00``/``-05:00``, 0, 3 or 6 fraction digits), parsed the way the
processor does: ``normalise_samples`` on 60-sample records through one warm ``TimeCache``; then the
same strings one by one through ``TimeCache.lookup`` and through ``iso_to_ms``. Prints ns per time of
each, best of ``--repeat``. Not a test: ``.venv/bin/python bench/times.py [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamer.processor.normalise import normalise_samples
from streamer.sim.render import iso_time
from streamer.times import TimeCache, iso_to_ms

T0 = 1_704_067_200_000


def sample_times(points: int = 500, minutes: int = 1440, seed: int = 7) -> list[str]:
    """The time strings of ``points`` points over ``minutes`` minutes, point by point."""
    rng = random.Random(seed)
    out = []
    for _ in range(points):
        phase, suffix, fraction = rng.randrange(60_000), rng.randrange(4), rng.choice((0, 3, 6))
        out += [iso_time(T0 + m * 60_000 + phase, suffix, fraction) for m in range(minutes)]
    return out


def best_ns(run: Callable[[], object], count: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter_ns()
        run()
        best = min(best, time.perf_counter_ns() - started)
    return best / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    texts = sample_times()
    records = [[[t, 1.5] for t in texts[i : i + 60]] for i in range(0, len(texts), 60)]
    cache = TimeCache()
    for record in records:
        normalise_samples(record, cache)  # warm: the steady state of a running processor
    n = len(texts)
    figures = {
        "normalise_samples (memo fast path, values too)": best_ns(
            lambda: [normalise_samples(r, cache) for r in records], n, args.repeat
        ),
        "TimeCache.lookup (warm)": best_ns(lambda: [cache.lookup(t) for t in texts], n, args.repeat),
        "iso_to_ms (generic parser)": best_ns(lambda: [iso_to_ms(t) for t in texts], n, args.repeat),
    }
    assert [cache.lookup(t) for t in texts] == [iso_to_ms(t) for t in texts]
    for name, ns in figures.items():
        print(f"{name:50s} {ns:8.1f} ns/time")
    ratio = figures["iso_to_ms (generic parser)"] / figures["TimeCache.lookup (warm)"]
    print(f"times={n} generic_over_memo={ratio:.1f}")


if __name__ == "__main__":
    main()
