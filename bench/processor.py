"""Processor benchmark: 24 h of one 4,583-point site (~6.6 M samples) consumed into embedded ClickHouse.

1. Fresh topics; ``ace.points`` filled with the site's configured points; the window's samples (the
   simulator's) produced into ``ace.samples`` BEFORE the processor starts, shaped by ``--shape``:
   ``backfill`` (default) as the producer publishes a backfill, window by window and grouped by
   point (records of up to 60 samples); ``day``, a point's whole day per record (1,440 samples).
2. The ceiling: a bare aiokafka consumer reads the same topic and orjson-decodes every record.
3. ``streamer processor`` runs as a child process (``streamer migrate`` first) and is timed from its
   start until the group has committed the end of every partition; its peak RSS is sampled.
4. ClickHouse is checked against the simulator's expected() (count FINAL, value sum).

Prints the figures and, last, ``samples_per_s=N ratio=R peak_rss_mb=M`` (R = N / ceiling). Not a
test: ``.venv/bin/python bench/processor.py [--shape backfill|day] [--hours 24] [--spy out.txt]``;
``--smaps`` adds, at the peak, RSS by kind of mapping (bench/_smaps.py) and the engine's jemalloc
figures, ``--memwatch FILE`` runs the processor under bench/_memwatch.py (glibc's and Python's heaps).
The rollups are recomputed by the sink itself (migration 008), so there is no run without them.
Needs the local broker (tools/kafka/kafka start).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
import orjson
import psutil
from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._smaps import breakdown, jemalloc_mb, top_files  # noqa: E402
from bench._spy import start_spy, stop_spy  # noqa: E402
from bench._threads import thread_cpu  # noqa: E402
from streamer.kafka import TopicReader, topic_specs  # noqa: E402
from streamer.settings import Settings  # noqa: E402
from streamer.sim.config import SimConfig  # noqa: E402
from tests.integration.processor import helpers as h  # noqa: E402
from tests.isolation import isolated_settings  # noqa: E402

SITE = "site_01"
CHUNK_POINTS = 500


async def fill(settings: Settings, config: SimConfig, hours: int, shape: str) -> int:
    """Publish the points and ``hours`` of samples; returns the samples published.

    ``backfill``: window by window (max_window_s) and grouped by point, as the producer publishes a
    backfill (1 h windows at one sample a minute: records of up to 60 samples). ``day``: each point's
    whole window in records of up to record_max_samples (1,440 samples a day: 25x fewer events).
    """
    await h.produce(settings, settings.topic_points, h.point_records(config))
    end_ms = h.START_MS + hours * 3_600_000
    step = settings.max_window_s * 1000 if shape == "backfill" else end_ms - h.START_MS
    records = [
        record
        for start in range(h.START_MS, end_ms, step)
        for record in h.sample_records(config, start, min(start + step, end_ms), settings.record_max_samples)
    ]
    print(f"shape={shape}: {len(records):,} records", flush=True)
    samples = 0
    for i in range(0, len(records), 2_000):
        chunk = records[i : i + 2_000]
        await h.produce(settings, settings.topic_samples, chunk)
        samples += sum(len(orjson.loads(v)["samples"]) for _, v in chunk if v is not None)
    return samples


async def bare_consume(settings: Settings) -> tuple[int, float]:
    """(samples, seconds) for a bare aiokafka consumer + orjson decode of the whole topic."""
    samples = 0

    def take(messages: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        nonlocal samples
        for m in messages:
            samples += len(orjson.loads(m.value)["samples"])

    async with TopicReader(settings, settings.topic_samples, client_suffix="bench-bare") as reader:
        started = time.perf_counter()
        await reader.read_to_end(take)
        return samples, time.perf_counter() - started


class PeakDetail:
    """At each new peak of RSS (4 MB above the last one looked at, at most once a second), the
    resident memory by kind of mapping (bench/_smaps.py) and the engine's jemalloc figures."""

    def __init__(self, pid: int, settings: Settings) -> None:
        self._pid = pid
        self._settings = settings
        self._looked_rss = 0
        self._looked_at = 0.0
        self.at_peak: dict[str, int] = {}
        self.engine: dict[str, float] = {}
        self.files: list[tuple[str, int]] = []
        self.at = 0.0

    async def sample(self, rss: int, elapsed: float) -> None:
        if rss < self._looked_rss + 4_000_000 or time.perf_counter() < self._looked_at + 1.0:
            return
        self._looked_rss, self._looked_at = rss, time.perf_counter()
        self.at_peak, self.at = breakdown(self._pid), elapsed
        self.files = top_files(self._pid)
        self.engine = await engine_jemalloc_mb(self._settings) | await engine_parts_mb(self._settings)

    def describe(self) -> str:
        parts = ", ".join(
            f"{k} {v / 1000:.0f} MB" if k != "threads" else f"{v} threads"
            for k, v in sorted(self.at_peak.items(), key=lambda kv: -kv[1])
            if v >= 1000 or k == "threads"
        )
        engine = ", ".join(f"{k} {v:.0f}" for k, v in self.engine.items())
        files = ", ".join(f"{Path(path).name} {kb / 1000:.0f} MB" for path, kb in self.files)
        return f"at {self.at:.1f}s, by mapping: {parts} (files: {files}); engine jemalloc (MB): {engine}"


async def run_processor(
    settings: Settings,
    workdir: Path,
    profile: str | None,
    spy: str | None = None,
    memwatch: str | None = None,
    smaps: bool = False,
) -> tuple[float, float, float]:
    """(seconds until everything is committed, peak RSS in MB, CPU seconds) of a ``streamer processor``."""
    args = [sys.executable, "-m", "streamer.cli", "processor"]
    if profile:
        args = [sys.executable, str(ROOT / "bench" / "_profile_processor.py"), profile]
    elif memwatch:
        args = [
            sys.executable,
            str(ROOT / "bench" / "_memwatch.py"),
            memwatch,
            "-m",
            "streamer.cli",
            "processor",
        ]
    log = (workdir / "processor.log").open("wb")
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=h.child_env(settings), stdout=log, stderr=subprocess.STDOUT)
    ps = psutil.Process(proc.pid)
    detail = PeakDetail(proc.pid, settings) if smaps else None
    spying = start_spy(proc.pid, spy) if spy else None
    peak = 0
    peak_at = 0.0
    parts: dict[str, int] = {}
    engine_peak = 0.0
    next_engine = 0.0
    first_commit: float | None = None
    ends = await h.end_offsets(settings, settings.topic_samples)
    try:
        while True:
            rss = ps.memory_info().rss
            if rss > peak:
                peak, peak_at = rss, time.perf_counter() - started
                if detail is not None:
                    await detail.sample(rss, peak_at)
            for name, kb in rss_parts(proc.pid).items():
                parts[name] = max(parts.get(name, 0), kb)
            if time.perf_counter() >= next_engine:
                next_engine = time.perf_counter() + 2.0
                engine_peak = max(engine_peak, await engine_tracked_mb(settings))
            done = await h.committed(settings, settings.topic_samples)
            if first_commit is None and any(done.values()):
                first_commit = time.perf_counter() - started
                print(
                    f"first commit after {first_commit:.1f}s (start-up, points table recovery), "
                    f"RSS {ps.memory_info().rss / 1e6:.0f} MB",
                    flush=True,
                )
            if all(done.get(p, 0) >= end for p, end in ends.items()):
                elapsed = time.perf_counter() - started
                cpu = ps.cpu_times()
                print_insert_share(settings, elapsed)
                print(
                    "peak RSS parts: "
                    + ", ".join(f"{name} {kb / 1000:.0f} MB" for name, kb in sorted(parts.items()))
                    + f"; engine MemoryTracking peak (sampled every 2 s) {engine_peak:.0f} MB; "
                    f"peak RSS {peak / 1e6:.0f} MB at {peak_at:.1f}s of {elapsed:.1f}s",
                    flush=True,
                )
                if detail is not None:
                    print(f"peak detail {detail.describe()}", flush=True)
                print_thread_cpu(proc.pid)
                break
            if proc.poll() is not None:
                raise SystemExit(f"processor exited with {proc.returncode}; see {workdir / 'processor.log'}")
            await asyncio.sleep(0.2)
    finally:
        if spying is not None and spy:
            stop_spy(spying, spy)
        h.stop(proc, timeout=60)
        log.close()
    return elapsed, peak / 1e6, cpu.user + cpu.system


def rss_parts(pid: int) -> dict[str, int]:
    """RssAnon (heaps: Python's and the engine's) and RssFile (mapped code: chdb's library) in kB."""
    parts: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("RssAnon", "RssFile"):
                parts[name] = int(value.split()[0])
    return parts


async def engine_tracked_mb(settings: Settings) -> float:
    """The embedded engine's own MemoryTracking (system.metrics), through the processor's query API."""
    sql = "SELECT value FROM system.metrics WHERE metric = 'MemoryTracking'"
    url = f"http://127.0.0.1:{settings.processor_web_port}/api/v1/sql"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            answer = await client.post(url, json={"sql": sql})
        rows = answer.json().get("rows") or answer.json().get("data") or []
        value = rows[0][0] if isinstance(rows[0], list) else next(iter(rows[0].values()))
        return float(value) / 1e6
    except (httpx.HTTPError, ValueError, IndexError, KeyError, StopIteration, AttributeError, TypeError):
        return 0.0


async def engine_jemalloc_mb(settings: Settings) -> dict[str, float]:
    """The engine's jemalloc summary line (allocated, active, metadata, resident, mapped, retained)."""
    url = f"http://127.0.0.1:{settings.processor_web_port}/api/v1/sql"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            answer = await client.post(url, json={"sql": "SELECT stats FROM system.jemalloc_stats"})
        rows = answer.json().get("rows") or answer.json().get("data") or []
        text = rows[0][0] if isinstance(rows[0], list) else next(iter(rows[0].values()))
    except (httpx.HTTPError, ValueError, IndexError, KeyError, StopIteration, AttributeError, TypeError):
        return {}
    return jemalloc_mb(str(text))


# What the engine's memory holds: its caches, its trackers, its merges' and queries' memory now.
_ENGINE_PARTS_SQL = """
SELECT metric, value / 1e6 FROM system.metrics
WHERE metric LIKE '%CacheBytes' OR metric IN ('MemoryTracking', 'MergesMutationsMemoryTracking')
UNION ALL SELECT 'merges', sum(memory_usage) / 1e6 FROM system.merges
UNION ALL SELECT 'queries', sum(memory_usage) / 1e6 FROM system.processes
"""


async def engine_parts_mb(settings: Settings) -> dict[str, float]:
    """The engine's caches and trackers (MB, system.metrics) and what its merges and queries hold now."""
    url = f"http://127.0.0.1:{settings.processor_web_port}/api/v1/sql"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            answer = await client.post(url, json={"sql": _ENGINE_PARTS_SQL})
        rows = answer.json().get("rows") or answer.json().get("data") or []
        pairs = [row if isinstance(row, list) else list(row.values()) for row in rows]
        return {str(name): float(value) for name, value in pairs if float(value) >= 0.5}
    except (httpx.HTTPError, ValueError, IndexError, KeyError, StopIteration, AttributeError, TypeError):
        return {}


def print_thread_cpu(pid: int) -> None:
    """CPU seconds per thread name (chdb's threads are named; ``main`` is the event loop's thread)."""
    top = sorted(thread_cpu(pid).items(), key=lambda kv: -kv[1])[:8]
    print("cpu by thread: " + ", ".join(f"{name} {sec:.1f}s" for name, sec in top), flush=True)


def print_insert_share(settings: Settings, elapsed: float) -> None:
    """How much of the run the ClickHouse inserts took (the processor's own histogram)."""
    text = httpx.get(f"http://127.0.0.1:{settings.processor_web_port}/metrics", timeout=10).text
    values = {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        if family.name == "streamer_insert_seconds"
        for s in family.samples
    }
    seconds, count = values["streamer_insert_seconds_sum"], values["streamer_insert_seconds_count"]
    print(f"inserts: {count:.0f} taking {seconds:.1f}s of the {elapsed:.1f}s run", flush=True)


async def drop_topics(settings: Settings) -> None:
    """Delete this run's topics: a run leaves ~200 MB of samples on the shared broker otherwise."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        names = [s.name for s in topic_specs(settings)]
        await admin.delete_topics([n for n in names if n in set(await admin.list_topics())])
    finally:
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--points", type=int, default=4583)
    parser.add_argument(
        "--shape",
        choices=["backfill", "day"],
        default="backfill",
        help="records as a backfill publishes them (<= 60 samples) or a day per point (1,440)",
    )
    parser.add_argument("--profile", help="write a cProfile of the processor's main thread here")
    parser.add_argument("--spy", help="py-spy every thread into this file, then summarise (needs py-spy)")
    parser.add_argument(
        "--memwatch", help="run the processor under bench/_memwatch.py, writing its JSON lines here"
    )
    parser.add_argument(
        "--smaps", action="store_true", help="at the peak: RSS by kind of mapping and the engine's jemalloc"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--log-level", default="warning", help="the processor's log level (its log is kept)")
    parser.add_argument(
        "--batch-rows", type=int, default=None, help="batch_max_rows (default: the setting's)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a processor setting for this run (repeatable), e.g. processor_fetch_partition_bytes=262144",
    )
    args = parser.parse_args()
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-processor-"))
    settings = h.processor_settings(
        isolated_settings(prefix, workdir / "data"),
        batch_max_s=1.0,
        log_level=args.log_level,
    )
    if args.batch_rows:
        settings = settings.model_copy(update={"batch_max_rows": args.batch_rows})
    if args.set:
        overrides = dict(item.split("=", 1) for item in args.set)
        settings = Settings.model_validate(settings.model_dump() | overrides)
        print("settings: " + ", ".join(f"{k}={getattr(settings, k)}" for k in overrides), flush=True)
    print(f"batch_max_rows={settings.batch_max_rows} batch_max_s={settings.batch_max_s}", flush=True)
    config = SimConfig(sites=(SITE,), points=args.points, seed=1)
    await h.prepare(settings)
    t = time.perf_counter()
    samples = await fill(settings, config, args.hours, args.shape)
    print(f"published {samples:,} samples in {time.perf_counter() - t:.1f}s", flush=True)
    bare_samples, bare_s = await bare_consume(settings)
    assert bare_samples == samples, (bare_samples, samples)
    bare_rate = bare_samples / bare_s
    print(f"bare aiokafka consume + orjson decode: {bare_rate:,.0f} samples/s ({bare_s:.1f}s)", flush=True)
    elapsed, peak_mb, cpu_s = await run_processor(
        settings, workdir, args.profile, args.spy, args.memwatch, args.smaps
    )
    rate = samples / elapsed
    print(
        f"processor: {samples:,} samples in {elapsed:.1f}s (process start to last commit), "
        f"{cpu_s:.1f} CPU-s ({samples / cpu_s:,.0f} samples per CPU-s)",
        flush=True,
    )
    got = h.check(settings)
    expected = h.want(config, h.START_MS, h.START_MS + args.hours * 3_600_000)
    print(
        f"clickhouse: count FINAL {got[0]:,} (expected {expected[0]:,}), exact: {got == expected}", flush=True
    )
    if not args.keep:
        shutil.rmtree(workdir / "data", ignore_errors=True)
        await drop_topics(settings)
    print(f"processor log: {workdir / 'processor.log'}", flush=True)
    print(f"samples_per_s={rate:.0f} ratio={rate / bare_rate:.2f} peak_rss_mb={peak_mb:.0f}")


if __name__ == "__main__":
    asyncio.run(main())
