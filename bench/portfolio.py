"""Portfolio benchmark: many sites polled live by two producer workers, stored by two processor workers.

1. A simulator child serves ``--sites`` × ``--points`` live (``sim serve --live``: a sample exists only
   once its time has passed); fresh topics on ``--bootstrap``, one embedded store per processor worker.
2. Two ``streamer processor`` workers (one consumer group, own chdb directories, as
   tests/integration/processor/test_two_workers.py runs them), then two ``streamer producer`` workers
   in one ``producer_group``, polling every ``--poll`` s from ``--lookback`` s ago.
3. Caught up: every site had an incremental window and the processors consumed what existed then.
   The ``--steady`` s after that are measured; ``--drain`` s more let their last samples through.
4. Printed: freshness p50/p99 (sample time → the processor group's commit past its record, an upper
   bound of "visible in ClickHouse", see bench/_freshness.py; and → in Kafka), API requests per cycle by
   endpoint (counted at the simulator), CPU-s per million samples and RSS (peak, final, steady-state
   slope and first vs last minute) of every process; then the stores after the workers stopped:
   ``count() FINAL`` and checksums of their union against the simulator's ``expected()`` over every
   site's common window, and keys found in both stores.

    .venv/bin/python bench/portfolio.py [--sites 1000 --points 200] [--steady 600] [--lookback 3600]
        [--poll 60] [--margin S] [--bootstrap 127.0.0.1:19192]
With ``BENCH_MEMWATCH=DIR`` every child runs under bench/_memwatch.py (where its memory goes, over time).
The machine's other load counts in every wall-clock figure; CPU-s and RSS are per process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._freshness import Freshness  # noqa: E402
from bench._procstat import Sampler  # noqa: E402
from bench.e2e import _wait_ready  # noqa: E402
from bench.portfolio_report import check_stores, print_report  # noqa: E402
from streamer.settings import Settings  # noqa: E402
from tests.integration.processor import helpers as h  # noqa: E402
from tests.isolation import isolated_settings  # noqa: E402


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sites", type=int, default=1000)
    p.add_argument("--points", type=int, default=200, help="Configured points per site.")
    p.add_argument("--poll", type=float, default=60.0, help="poll_interval_s of the producers.")
    p.add_argument("--steady", type=float, default=600.0, help="Seconds of steady state measured.")
    p.add_argument("--lookback", type=int, default=3600, help="initial_lookback_s: the catch-up.")
    p.add_argument("--margin", type=float, help="ace_clock_margin_s (default: the setting's default).")
    p.add_argument("--overlap", type=int, help="overlap_s (default: the setting's default).")
    p.add_argument(
        "--settle", type=float, help="Seconds between caught up and the steady state (default: poll + 10)."
    )
    p.add_argument("--drain", type=float, help="Seconds after the steady state (default: poll + 40).")
    p.add_argument("--producers", type=int, default=2)
    p.add_argument("--processors", type=int, default=2)
    p.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka (a private broker is best).")
    p.add_argument("--broker-pid", type=int, help="Sample this broker process too (default: tools/kafka's).")
    p.add_argument("--sample-every", type=float, default=5.0, help="Seconds between /proc samples.")
    p.add_argument("--catchup-timeout", type=float, default=1800.0)
    p.add_argument("--workdir", type=Path, help="Keep stores and logs here (default: a temporary dir).")
    p.add_argument("--log-level", default="warning", help="Of the children.")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="Any other setting of every child (repeatable), e.g. overlap_skip_unchanged=false.",
    )
    return p.parse_args()


def _settings(args: argparse.Namespace, workdir: Path, sim_port: int) -> Settings:
    prefix = f"pf{uuid.uuid4().hex[:8]}"
    extra: dict[str, Any] = {} if args.margin is None else {"ace_clock_margin_s": args.margin}
    if args.overlap is not None:
        extra["overlap_s"] = args.overlap
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or name not in Settings.model_fields:
            raise SystemExit(f"--set {item!r}: not NAME=VALUE of a setting")
        extra[name] = value
    return isolated_settings(
        prefix,
        workdir / "data",
        kafka_bootstrap_servers=args.bootstrap,
        ace_base_url=f"http://127.0.0.1:{sim_port}/api",
        ace_token=SecretStr("dev-token"),
        poll_interval_s=args.poll,
        initial_lookback_s=args.lookback,
        producer_group=f"{prefix}-producers",
        producer_metrics_port=0,
        # Each processor has its own embedded store holding only its partitions' keys, so no single
        # query API can judge a site's completeness here: the repair loop would fail every cycle (or,
        # pointed at one store, re-fetch the other's half). bench/completeness.py measures repair.
        repair_revisit_s=[],
        log_level=args.log_level,
        **extra,
    )


def _spawn(settings: Settings, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    # BENCH_MEMWATCH=DIR: each child under bench/_memwatch.py, writing DIR/<its log's name>.jsonl.
    watch = os.environ.get("BENCH_MEMWATCH")
    wrap = [str(ROOT / "bench" / "_memwatch.py"), str(Path(watch) / f"{log.stem}.jsonl")] if watch else []
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *wrap, "-m", "streamer.cli", *args],
            env=h.child_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _broker_pid(args: argparse.Namespace) -> int | None:
    if args.broker_pid:
        return int(args.broker_pid)
    pidfile = ROOT / ".kafka" / args.bootstrap.rpartition(":")[2] / "kafka.pid"
    return int(pidfile.read_text()) if pidfile.exists() else None


class Runs:
    """Per site, from ace.sync_runs: first window start, last ok window end, incremental seen."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.first_start: dict[str, int] = {}
        self.last_end: dict[str, int] = {}
        self.live: set[str] = set()
        self.ends: list[tuple[str, int]] = []  # (site, window end) of every incremental window

    async def run(self) -> None:
        s = self._settings
        consumer = AIOKafkaConsumer(
            s.topic_sync_runs,
            bootstrap_servers=s.kafka_bootstrap_servers,
            client_id=f"{s.kafka_client_id}-bench-runs",
            group_id=None,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            async for m in consumer:
                run = orjson.loads(m.value or b"{}")
                site = run["site"]
                self.first_start[site] = min(self.first_start.get(site, 2**62), run["window_start_ms"])
                if run["status"] == "ok" and run["kind"] != "repair":
                    self.last_end[site] = max(self.last_end.get(site, 0), run["window_end_ms"])
                    if run["kind"] == "incremental":
                        self.live.add(site)
                        self.ends.append((site, run["window_end_ms"]))
        finally:
            await consumer.stop()


async def _sim_stats(port: int) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        stats: dict[str, Any] = (await client.get(f"http://127.0.0.1:{port}/_sim/stats", timeout=30)).json()
        return stats


async def _catch_up(
    args: argparse.Namespace, settings: Settings, runs: Runs, procs: list[subprocess.Popen[bytes]]
) -> float:
    """Seconds until every site went live and the processors consumed what existed then."""
    started = time.monotonic()
    while len(runs.live) < args.sites:
        for proc in procs:
            assert proc.poll() is None, f"a child exited with {proc.returncode}"
        assert time.monotonic() - started < args.catchup_timeout, f"{len(runs.live)} sites live only"
        await asyncio.sleep(1.0)
    await h.wait_consumed(settings, procs, timeout=args.catchup_timeout)
    return time.monotonic() - started


async def _measure(args: argparse.Namespace, workdir: Path, sim_port: int) -> dict[str, Any]:
    settings = _settings(args, workdir, sim_port)
    out: dict[str, Any] = {"settings": settings, "args": args}
    sampler = Sampler(args.sample_every)
    sim = _spawn(settings, _sim_args(args, sim_port), workdir / "sim.log")
    children: list[tuple[str, subprocess.Popen[bytes]]] = [("simulator", sim)]
    tasks: list[asyncio.Task[None]] = []
    try:
        await _wait_ready(settings, sim, f"http://127.0.0.1:{sim_port}/_sim/health")
        workers = []
        for i in range(1, args.processors + 1):
            worker = settings.model_copy(
                update={"data_dir": workdir / f"store{i}", "processor_web_port": h.free_port()}
            )
            await h.prepare(worker)
            workers.append(worker)
            children.append((f"processor{i}", _spawn(worker, ["processor"], workdir / f"processor{i}.log")))
        out["stores"] = workers
        for (_, proc), worker in zip(children[1:], workers, strict=True):
            await _wait_ready(worker, proc, f"http://127.0.0.1:{worker.processor_web_port}/health")
        await h.until_members(settings, args.processors)
        run_start_ms = time.time_ns() // 1_000_000
        runs, fresh = Runs(settings), Freshness(settings, since_ms=run_start_ms)
        for i in range(1, args.producers + 1):
            children.append((f"producer{i}", _spawn(settings, ["producer"], workdir / f"producer{i}.log")))
        broker = _broker_pid(args)
        for name, proc in children:
            sampler.watch(name, proc.pid)
        if broker:
            sampler.watch("broker", broker)
        sampler.watch("bench", os.getpid())  # the trackers' own cost, on the same two cores
        tasks = [asyncio.create_task(t) for t in (sampler.run(), runs.run(), fresh.run())]
        procs = [p for _, p in children]
        out["catchup_s"] = await _catch_up(args, settings, runs, procs)
        # Sites move between the producers while both start (each rebalance makes a worker re-read the
        # sites it gained and refresh their points in its next cycle): let that pass before measuring.
        await asyncio.sleep(args.poll + 10 if args.settle is None else args.settle)
        out.update(await _steady(args, sampler, fresh, sim_port, procs))
        for name, proc in children:
            if name.startswith("producer"):
                h.stop(proc)
        await h.wait_consumed(settings, procs[: 1 + args.processors], timeout=600)
        sampler.sample_all()
        out.update(runs=runs, fresh=fresh, series=sampler.series)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        out["exit_codes"] = {name: h.stop(proc) for name, proc in reversed(children)}
    return out


async def _steady(
    args: argparse.Namespace, sampler: Sampler, fresh: Freshness, sim_port: int, procs: list[Any]
) -> dict[str, Any]:
    sampler.sample_all()
    start_ms = (time.time_ns() // 1_000_000 // 1000 + 1) * 1000
    await asyncio.sleep(start_ms / 1000 - time.time())
    t0, stats0 = time.monotonic(), await _sim_stats(sim_port)
    sampler.sample_all()
    await asyncio.sleep(args.steady)
    sampler.sample_all()
    t1, stats1 = time.monotonic(), await _sim_stats(sim_port)
    drain = args.poll + 40 if args.drain is None else args.drain
    await asyncio.sleep(drain)
    for proc in procs:
        assert proc.poll() is None, f"a child exited with {proc.returncode}"
    end_ms = start_ms + round(args.steady * 1000)
    return {
        "steady": (t0, t1, start_ms, end_ms),
        "requests": {k: stats1.get(k, 0) - stats0.get(k, 0) for k in stats1 if k.startswith("requests ")},
        "served": stats1.get("samples", 0) - stats0.get("samples", 0),
        "unresolved": fresh.unresolved(start_ms, end_ms),
    }


def _sim_args(args: argparse.Namespace, port: int) -> list[str]:
    sites, points = str(args.sites), str(args.points)
    return ["sim", "serve", "--live", "--sites", sites, "--points", points, "--port", str(port)]


def main() -> None:
    args = _args()
    with tempfile.TemporaryDirectory(prefix="streamer-portfolio-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        result = asyncio.run(_measure(args, workdir, h.free_port()))
        result["stores_check"] = check_stores(result)
        print_report(result, time.monotonic() - started)
        for name in ("producer1", "processor1"):
            tail = (workdir / f"{name}.log").read_text()[-1500:]
            if "ERROR" in tail or "Traceback" in tail:
                print(f"--- {name}.log (tail)\n{tail}")


if __name__ == "__main__":
    main()
