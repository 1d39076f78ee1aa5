"""Producer benchmark: a 24-hour backfill of one 4,583-point site (~6.6 M samples) into fresh topics.

For each page order the simulator serves (grouped by point, interleaved by time):
  1. ``streamer sim serve`` runs as its own process (as the real API would be: elsewhere);
  2. the producer runs in a child process: ``open_producer`` + ``backfill`` over 24 one-hour windows,
     timed from the first window to the last acknowledgement; its peak RSS is the child's ru_maxrss;
  3. the same records are read back from ace.samples and produced again with bare aiokafka
     ``create_batch``/``send_batch`` (same producer options) into a fresh topic: the ceiling.
Prints one line per order and, last, ``samples_per_s=N ratio=R peak_rss_mb=M`` (N and R of the slower
order, M the larger peak). Not a test: run it with ``.venv/bin/python bench/producer.py``.
Needs the local broker (tools/kafka/kafka start). ``--hours`` and ``--points`` shrink the run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from streamer.kafka import TopicReader, ensure_topics, reliable_producer
from streamer.producer.compression import compression_type, use_level
from streamer.runtime import tune_gc
from streamer.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
END_MS = 1_709_337_600_000  # 2024-03-02T00:00:00Z
TOKEN = "bench-token"
SITE = "site_01"


# ------------------------------------------------------------------------------------ producer child
def producer_child(overrides: dict[str, Any], start_ms: int, end_ms: int, profile: str, out: Any) -> None:
    """Runs in its own process so its ru_maxrss is the producer's peak alone."""
    settings = load_settings(**overrides)
    tune_gc()  # as `streamer backfill` and `streamer producer` do
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        result = asyncio.run(_produce(settings, start_ms, end_ms))
        profiler.disable()
        profiler.dump_stats(profile)
    else:
        result = asyncio.run(_produce(settings, start_ms, end_ms))
    result["peak_rss_mb"] = _peak_rss_mb()
    out.put(result)


async def _produce(settings: Settings, start_ms: int, end_ms: int) -> dict[str, Any]:
    from streamer.ace.client import AceClient
    from streamer.producer.context import fixed_clock
    from streamer.producer.runner import backfill, open_producer
    from streamer.producer.sync import refresh_points

    async with (
        AceClient(settings) as client,
        open_producer(settings, client, clock=fixed_clock(end_ms)) as ctx,
    ):
        await refresh_points(ctx, SITE)  # not part of the timed backfill
        started, cpu = time.perf_counter(), _cpu()
        rss: list[float] = []
        runs = await backfill(ctx, SITE, start_ms, end_ms, lambda w, r: rss.append(_rss_mb()))
        elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
    return {
        "elapsed_s": elapsed,
        "fetched": sum(r.samples_fetched for r in runs),
        "samples": sum(r.samples_published for r in runs),
        "records": sum(r.records_published for r in runs),
        "pages": sum(r.pages for r in runs),
        "windows": len(runs),
        "cpu_s": cpu,
        "rss_by_window": rss,
    }


def _peak_rss_mb() -> float:
    """VmHWM: the high-water mark of this process image. Not ru_maxrss, which Linux carries over
    from the parent's image across fork+exec (the bench parent holds the read-back records)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ------------------------------------------------------------------------------------ bare baseline
async def read_back(settings: Settings, topic: str) -> dict[int, list[tuple[bytes, bytes]]]:
    async with TopicReader(settings, topic, client_suffix="bench-read-back", fetch_bytes=16 << 20) as reader:
        out: dict[int, list[tuple[bytes, bytes]]] = {tp.partition: [] for tp in reader.partitions}
        async for messages in reader.batches_to_end(max_records=100_000):
            for m in messages:
                out[m.partition].append((m.key, m.value))
        return out


async def bare_produce(settings: Settings, records: dict[int, list[tuple[bytes, bytes]]]) -> float:
    """Seconds to publish ``records`` (same partitions) with create_batch/send_batch, all acked."""
    topic = settings.topic_samples + ".bare"
    await ensure_topics(settings.model_copy(update={"topic_samples": topic}))
    use_level(settings.producer_compression, settings.producer_compression_level)  # as the producer
    producer = reliable_producer(settings, compression_type=compression_type(settings.producer_compression))
    await producer.start()
    try:
        await producer.partitions_for(topic)
        started = time.perf_counter()
        futures = []
        for partition, items in records.items():
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


# ------------------------------------------------------------------------------------ orchestration
def start_sim(order: str, points: int) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "streamer.cli", "--log-level", "warning", "sim", "serve", "--port", "0"]
    cmd += ["--sites", "1", "--points", str(points), "--order", order, "--token", TOKEN]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit(f"simulator did not start: {url!r}")
    return proc, url


def run_order(order: str, hours: int, points: int, profile: str) -> dict[str, Any]:
    sim, url = start_sim(order, points)
    try:
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        overrides = {"ace_base_url": url, "ace_token": TOKEN, "sites": [SITE], "log_level": "warning"}
        overrides |= {
            f"topic_{t}": f"{prefix}.{t}" for t in ("samples", "points", "sync", "sync_runs", "dlq")
        }
        overrides["kafka_client_id"] = f"{prefix}-bench"
        start_ms = END_MS - hours * 3_600_000
        queue: Any = mp.get_context("spawn").Queue()
        child = mp.get_context("spawn").Process(
            target=producer_child, args=(overrides, start_ms, END_MS, profile and f"{profile}.{order}", queue)
        )
        child.start()
        result: dict[str, Any] = queue.get(timeout=1800)
        child.join()
    finally:
        sim.terminate()
        sim.wait()
    settings = load_settings(**overrides)
    records = asyncio.run(read_back(settings, settings.topic_samples))
    result["bare_s"] = asyncio.run(bare_produce(settings, records))
    result["order"] = order
    result["rate"] = result["samples"] / result["elapsed_s"]
    result["bare_rate"] = result["samples"] / result["bare_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--points", type=int, default=4583)
    parser.add_argument("--orders", default="grouped,interleaved")
    parser.add_argument("--profile", default="", help="Write cProfile stats of the producer to PATH.<order>.")
    args = parser.parse_args()
    results = [run_order(order, args.hours, args.points, args.profile) for order in args.orders.split(",")]
    for r in results:
        rss = r["rss_by_window"]
        print(
            f"{r['order']:>11}: {r['samples']:,} samples ({r['fetched']:,} fetched, {r['pages']} pages, "
            f"{r['records']:,} records, {r['windows']} windows) in {r['elapsed_s']:.1f} s "
            f"= {r['rate']:,.0f}/s, cpu {r['cpu_s']:.1f} s; bare send_batch {r['bare_s']:.1f} s "
            f"= {r['bare_rate']:,.0f}/s; peak RSS {r['peak_rss_mb']:.0f} MB "
            f"(between windows {min(rss):.0f}-{max(rss):.0f} MB)"
        )
    slowest = min(results, key=lambda r: r["rate"])
    peak = max(r["peak_rss_mb"] for r in results)
    print(
        f"samples_per_s={slowest['rate']:.0f} ratio={slowest['rate'] / slowest['bare_rate']:.2f} "
        f"peak_rss_mb={peak:.0f}"
    )


if __name__ == "__main__":
    main()
