"""Points-table memory benchmark: the processor's RSS with 5,000 and with 1,000,000 configured points.

For each size N: fresh topics; ``ace.points`` filled with N points over N / 200 sites (each site the
simulator's 200-point catalogue under its own name, so names and tags are the simulator's); a batch of
samples (10 per record) for 2,000 points spread over the sites, plus 100 records of points nobody
configured. Then the real ``streamer processor`` runs (``streamer migrate`` first): its RSS is read
when its log says the points table is recovered, and again once the group has committed every
samples offset (the batch judged and inserted); the peak is sampled throughout. ClickHouse's
``points`` table is checked to hold N points (FINAL) and ``timeseries_raw`` the batch's samples.

Prints one line per size, then ``rss_after_recovery_mb`` / ``rss_after_batch_mb`` for both and their
difference (target: the 1,000,000-point run ≤ 100 MB above the 5,000-point run). Not a test:
``.venv/bin/python bench/points_table.py [--sizes 5000,1000000]``. Needs the local broker.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processor import drop_topics  # noqa: E402
from streamer.settings import Settings  # noqa: E402
from streamer.sim.config import SimConfig  # noqa: E402
from streamer.times import ms_to_iso  # noqa: E402
from tests.integration.processor import helpers as h  # noqa: E402
from tests.isolation import isolated_settings  # noqa: E402

POINTS_PER_SITE = 200
BATCH_POINTS = 2_000
SAMPLES_PER_RECORD = 10
UNKNOWN_RECORDS = 100
RECOVERED = b"points table recovered"


@dataclass
class Run:
    points: int
    after_recovery_mb: float
    after_batch_mb: float
    peak_mb: float
    recovery_s: float
    cpu_s: float


def template() -> list[dict[str, object]]:
    """One site's configured points as ``ace.points`` values (the simulator's catalogue)."""
    config = SimConfig(sites=("site_00000",), points=POINTS_PER_SITE, seed=1)
    return [orjson.loads(value) for _, value in h.point_records(config) if value is not None]


def point_records(n: int) -> list[tuple[bytes, bytes]]:
    """N points: the template's points under ``site_00000``, ``site_00001``, ... (enabled all)."""
    base = template()
    out: list[tuple[bytes, bytes]] = []
    for s in range(-(-n // len(base))):
        site = f"site_{s:05d}"
        for value in base[: n - len(out)]:
            value = {**value, "site": site, "collect_enabled": True}
            out.append((f"{site}/{value['point']}".encode(), orjson.dumps(value)))
    return out


def sample_records(points: list[tuple[bytes, bytes]]) -> tuple[list[tuple[bytes, bytes]], int]:
    """Records of SAMPLES_PER_RECORD samples for BATCH_POINTS points spread over the table, and some
    of points nobody configured; returns them and the samples that must be stored."""
    step = max(1, len(points) // BATCH_POINTS)
    chosen = [orjson.loads(value) for _, value in points[::step][:BATCH_POINTS]]
    chosen += [{"site": "site_00000", "point": f"nobody/configured/{i}"} for i in range(UNKNOWN_RECORDS)]
    out = []
    for p in chosen:
        pairs = [[ms_to_iso(h.START_MS + 60_000 * i), float(i)] for i in range(SAMPLES_PER_RECORD)]
        value = {"site": p["site"], "point": p["point"], "samples": pairs, "sync_id": "bench"}
        out.append((f"{p['site']}/{p['point']}".encode(), orjson.dumps(value)))
    return out, (len(chosen) - UNKNOWN_RECORDS) * SAMPLES_PER_RECORD


async def produce(settings: Settings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    for i in range(0, len(records), 50_000):
        await h.produce(settings, topic, records[i : i + 50_000])


def rss_mb(ps: psutil.Process) -> float:
    return float(ps.memory_info().rss) / 1e6


async def run_processor(settings: Settings, workdir: Path) -> tuple[float, float, float, float, float]:
    """(RSS after recovery, RSS after the batch, peak, recovery seconds, CPU-s) of ``streamer processor``."""
    log_path = workdir / "processor.log"
    proc = h.start_processor(settings, log_path)
    ps = psutil.Process(proc.pid)
    started = time.perf_counter()
    ends = await h.end_offsets(settings, settings.topic_samples)
    peak = after_recovery = 0.0
    recovery_s = 0.0
    try:
        while True:
            rss = rss_mb(ps)
            peak = max(peak, rss)
            if not after_recovery and RECOVERED in log_path.read_bytes():
                after_recovery, recovery_s = rss, time.perf_counter() - started
            done = await h.committed(settings, settings.topic_samples)
            if after_recovery and all(done.get(p, 0) >= end for p, end in ends.items()):
                await asyncio.sleep(1.0)  # the batch's buffers freed, as a steady worker would be
                after_batch = rss_mb(ps)
                cpu = ps.cpu_times()
                return after_recovery, after_batch, max(peak, after_batch), recovery_s, cpu.user + cpu.system
            if proc.poll() is not None:
                raise SystemExit(f"processor exited with {proc.returncode}; see {log_path}")
            await asyncio.sleep(0.2)
    finally:
        h.stop(proc, timeout=60)


async def one(n: int, keep: bool) -> Run:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-points-"))
    settings = h.processor_settings(isolated_settings(prefix, workdir / "data"), log_level="info")
    await h.prepare(settings)
    points = point_records(n)
    samples, stored = sample_records(points)
    t = time.perf_counter()
    await produce(settings, settings.topic_points, points)
    await produce(settings, settings.topic_samples, samples)
    print(f"{n:,} points: published in {time.perf_counter() - t:.1f}s", flush=True)
    del points
    try:
        after_recovery, after_batch, peak, recovery_s, cpu_s = await run_processor(settings, workdir)
        db = settings.clickhouse_database
        known = h.clickhouse(settings, f"SELECT count() FROM {db}.points FINAL WHERE NOT deleted")[0][0]
        rows = h.clickhouse(settings, f"SELECT count() FROM {db}.timeseries_raw FINAL")[0][0]
        print(
            f"{n:,} points: recovered after {recovery_s:.1f}s, RSS {after_recovery:.0f} MB after recovery, "
            f"{after_batch:.0f} MB after the batch, peak {peak:.0f} MB, {cpu_s:.1f} CPU-s; ClickHouse "
            f"points {int(known):,} (expected {n:,}), samples {int(rows):,} (expected {stored:,})",
            flush=True,
        )
        assert int(known) == n and int(rows) == stored, (known, rows)
    finally:
        if not keep:
            shutil.rmtree(workdir / "data", ignore_errors=True)
            await drop_topics(settings)
    return Run(n, after_recovery, after_batch, peak, recovery_s, cpu_s)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,1000000", help="point counts, the first is the base")
    parser.add_argument("--keep", action="store_true", help="keep the data directories and topics")
    args = parser.parse_args()
    runs = [await one(int(n), args.keep) for n in args.sizes.split(",")]
    base = runs[0]
    for run in runs:
        print(
            f"points={run.points} rss_after_recovery_mb={run.after_recovery_mb:.0f} "
            f"rss_after_batch_mb={run.after_batch_mb:.0f} peak_rss_mb={run.peak_mb:.0f} "
            f"more_than_base_after_recovery_mb={run.after_recovery_mb - base.after_recovery_mb:.0f} "
            f"more_than_base_after_batch_mb={run.after_batch_mb - base.after_batch_mb:.0f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
