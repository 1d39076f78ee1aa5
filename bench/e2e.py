"""End-to-end benchmark: simulator → producer → Kafka → processor → embedded ClickHouse, checked exactly.

1. A simulator child process serves one 4,583-point site; fresh topics and a fresh data dir.
2. ``streamer processor`` starts (after ``streamer migrate``) and waits, idle, for data.
3. Timed: ``streamer backfill`` of ``--hours`` (default 24) of the site, until the processor group has
   committed the end of every partition of ``ace.samples``.
4. ClickHouse (``count() FINAL``, distinct keys, key checksum, value sum) against the simulator's
   ``expected()`` for configured, enabled, valid samples.
5. CPU seconds per million served samples of each process over the timed part (simulator, producer,
   broker, processor; from /proc and the producer's rusage), so a gain shows apart from the machine's
   noise. The broker is the one listening on the bootstrap port: when it is shared, others' traffic
   counts too.
6. The ceiling, in the same run: the ``ace.samples`` records read back and published again with bare
   aiokafka ``create_batch``/``send_batch`` (``bench/producer.py``'s), and the ratio of the e2e rate to it.

    .venv/bin/python bench/e2e.py [--hours H] [--points M] [--order grouped|interleaved]
Last line: ``samples=N seconds=S samples_per_s=R exact=true|false`` (N: samples the API served).
Needs the local broker (tools/kafka/kafka start).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._procstat import cpu_s, listener_pid, wait_cpu  # noqa: E402
from bench._spy import start_spy, stop_spy  # noqa: E402
from bench._threads import thread_cpu  # noqa: E402
from bench.producer import bare_produce, read_back  # noqa: E402
from streamer.settings import Settings  # noqa: E402
from streamer.sim import SimConfig, expected  # noqa: E402
from tests.integration.processor import helpers as h  # noqa: E402
from tests.isolation import isolated_settings  # noqa: E402

SITE = "site_01"
START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def _settings(workdir: Path, sim_port: int) -> Settings:
    prefix = f"e2e{uuid.uuid4().hex[:8]}"
    return isolated_settings(
        prefix,
        workdir / "data",
        ace_base_url=f"http://127.0.0.1:{sim_port}/api",
        ace_token=SecretStr("dev-token"),
        sites=[SITE],
        producer_metrics_port=0,
        processor_web_port=h.free_port(),
        log_level="warning",
    )


def _start_sim(port: int, points: int, order: str, log: Path) -> subprocess.Popen[bytes]:
    args = [
        "sim",
        "serve",
        "--sites",
        SITE,
        "--points",
        str(points),
        "--order",
        order,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streamer.cli", *args], stdout=out, stderr=subprocess.STDOUT
        )


async def _wait_ready(
    settings: Settings, proc: subprocess.Popen[bytes], url: str, timeout: float = 90
) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            assert proc.poll() is None, f"child exited with {proc.returncode}"
            try:
                if (await client.get(url, timeout=2)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{url} not ready in {timeout}s"
            await asyncio.sleep(0.5)


def _check_sql(db: str) -> str:
    return (
        "SELECT count(), uniqExact(site, point, ts), "
        "sum(toInt64(round(value * 1000))), "
        "sum(CRC32(concat(site, '/', point, '@', toString(toUnixTimestamp64Milli(ts))))) "
        f"FROM {db}.timeseries_raw FINAL WHERE site = '{SITE}' AND point NOT LIKE 'weather.%'"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--points", type=int, default=4583)
    parser.add_argument("--order", choices=["grouped", "interleaved"], default="interleaved")
    parser.add_argument(
        "--spy", help="py-spy each process into PREFIX.<process>, then summarise them (needs py-spy)"
    )
    args = parser.parse_args()
    end_ms = START_MS + args.hours * 3_600_000
    with tempfile.TemporaryDirectory(prefix="streamer-e2e-") as tmp:
        workdir = Path(tmp)
        sim_port = h.free_port()
        settings = _settings(workdir, sim_port)
        sim = _start_sim(sim_port, args.points, args.order, workdir / "sim.log")
        processor = None
        try:
            await _wait_ready(settings, sim, f"http://127.0.0.1:{sim_port}/_sim/health")
            await h.prepare(settings)
            processor = h.start_processor(settings, workdir / "processor.log")
            await _wait_ready(settings, processor, f"http://127.0.0.1:{settings.processor_web_port}/health")
            spies = {n: start_spy(p.pid, f"{args.spy}.{n}") for n, p in _named(sim, processor) if args.spy}
            others = {"simulator": sim.pid, "processor": processor.pid}
            broker = listener_pid(int(settings.kafka_bootstrap_servers.rsplit(":", 1)[1]))
            if broker is not None:
                others["broker"] = broker
            cpu_before = {name: cpu_s(pid) for name, pid in others.items()}
            threads_before = thread_cpu(processor.pid)
            started = time.monotonic()
            cpu = {"producer": await asyncio.to_thread(_backfill, settings, START_MS, end_ms, args.spy)}
            produced = time.monotonic() - started
            await h.wait_consumed(settings, [processor], timeout=3600)
            seconds = time.monotonic() - started
            cpu |= {name: cpu_s(pid) - cpu_before[name] for name, pid in others.items()}
            threads = _thread_split(threads_before, thread_cpu(processor.pid), cpu["processor"])
            for name, spy in spies.items():
                stop_spy(spy, f"{args.spy}.{name}")
        finally:
            if processor is not None:
                h.stop(processor)
            h.stop(sim)
        bare_s = await _ceiling(settings)
        got = h.clickhouse(settings, _check_sql(settings.clickhouse_database))[0]
        config = SimConfig(sites=(SITE,), points=args.points, order=args.order)
        want = expected(config, SITE, START_MS, end_ms)
        valid = want["valid"]
        exact = [int(got[0]), int(got[1]), int(got[2]), int(got[3])] == [
            valid["count"],
            valid["count"],
            valid["value_milli_sum"],
            valid["key_checksum"],
        ]
        served = want["all"]["count"]
        print(f"window: {args.hours} h, {args.points} points, order={args.order}")
        print(f"served by the API: {served:,} distinct samples; expected in ClickHouse: {valid['count']:,}")
        print(f"in ClickHouse: count FINAL={int(got[0]):,} distinct={int(got[1]):,}")
        print(f"producer done after {produced:.1f}s; processor caught up after {seconds:.1f}s")
        millions = served / 1e6
        print(
            "CPU-s per million samples: "
            + ", ".join(f"{name} {used / millions:.2f}" for name, used in cpu.items())
            + f" (total {sum(cpu.values()) / millions:.2f})"
        )
        print(
            "processor CPU-s by thread: " + ", ".join(f"{name} {used:.1f}" for name, used in threads.items())
        )
        print(
            f"bare aiokafka send_batch of the same records: {bare_s:.1f}s = {served / bare_s:,.0f}/s; "
            f"ratio e2e/ceiling {bare_s / seconds:.2f}, producer/ceiling {bare_s / produced:.2f}"
        )
        print(
            f"samples={served} seconds={seconds:.1f} samples_per_s={served / seconds:.0f} "
            f"exact={'true' if exact else 'false'}"
        )


def _named(sim: subprocess.Popen[bytes], processor: subprocess.Popen[bytes]) -> list[tuple[str, Any]]:
    return [("simulator", sim), ("processor", processor)]


def _thread_split(before: dict[str, float], after: dict[str, float], total: float) -> dict[str, float]:
    """The processor's CPU by thread name over the run, largest first; threads that ended meanwhile
    (and rounding) are the remainder of the process's total."""
    used = {name: after[name] - before.get(name, 0.0) for name in after}
    top = dict(sorted(used.items(), key=lambda kv: -kv[1])[:6])
    top["other or ended"] = max(0.0, total - sum(used.values()))
    return top


def _backfill(settings: Settings, start_ms: int, end_ms: int, spy: str | None) -> float:
    """``streamer backfill`` of the window in a child; returns the child's CPU seconds."""
    cmd = [sys.executable, "-m", "streamer.cli", "backfill", "--site", SITE]
    cmd += ["--start", str(start_ms), "--end", str(end_ms)]
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen(cmd, env=h.child_env(settings), stdout=subprocess.DEVNULL, stderr=err)
        spying = start_spy(child.pid, f"{spy}.producer") if spy else None
        code, cpu = wait_cpu(child)
        if spying is not None:
            stop_spy(spying, f"{spy}.producer")
        err.seek(0)
        assert code == 0, err.read()[-2000:].decode(errors="replace")
    return cpu


async def _ceiling(settings: Settings) -> float:
    """Seconds bare aiokafka takes to publish the run's ``ace.samples`` records again (all acked)."""
    records = await read_back(settings, settings.topic_samples)
    return await bare_produce(settings, records)


if __name__ == "__main__":
    asyncio.run(main())
