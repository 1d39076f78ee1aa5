"""End-to-end benchmark: simulator → producer → Kafka → processor → embedded ClickHouse, checked exactly.

1. A simulator child process serves one 4,583-point site; fresh topics and a fresh data dir.
2. ``streamer processor`` starts (after ``streamer migrate``) and waits, idle, for data.
3. Timed: ``streamer backfill`` of ``--hours`` (default 24) of the site, until the processor group has
   committed the end of every partition of ``ace.samples``.
4. ClickHouse (``count() FINAL``, distinct keys, key checksum, value sum) against the simulator's
   ``expected()`` for configured, enabled, valid samples.

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

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._spy import start_spy, stop_spy  # noqa: E402
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
    parser.add_argument("--spy", help="py-spy the processor into this file, then summarise (needs py-spy)")
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
            spying = start_spy(processor.pid, args.spy) if args.spy else None
            started = time.monotonic()
            backfill = await asyncio.to_thread(
                h.streamer,
                settings,
                "backfill",
                "--site",
                SITE,
                "--start",
                str(START_MS),
                "--end",
                str(end_ms),
                timeout=3600,
            )
            assert backfill.returncode == 0, backfill.stderr[-2000:]
            produced = time.monotonic() - started
            await h.wait_consumed(settings, [processor], timeout=3600)
            seconds = time.monotonic() - started
            if spying is not None and args.spy:
                stop_spy(spying, args.spy)
        finally:
            if processor is not None:
                h.stop(processor)
            h.stop(sim)
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
        print(
            f"samples={served} seconds={seconds:.1f} samples_per_s={served / seconds:.0f} "
            f"exact={'true' if exact else 'false'}"
        )


if __name__ == "__main__":
    asyncio.run(main())
