"""Run a simulator in a child process (``streamer sim serve``), for benchmarks that need it off the
client's core. The in-process ``run_simulator`` is the choice for tests."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from streamer.sim.config import FaultConfig, SimConfig
from streamer.times import ms_to_iso


def config_args(config: SimConfig) -> list[str]:
    """The ``streamer sim serve`` options that rebuild ``config`` (the token travels separately)."""
    args = [
        "--sites", ",".join(config.sites), "--points", str(config.points),
        "--extra-share", repr(config.extra_share), "--disabled-share", repr(config.disabled_share),
        "--interval", str(config.interval_s), "--ms-phase-share", repr(config.ms_phase_share),
        "--string-share", repr(config.string_share), "--invalid-share", repr(config.invalid_share),
        "--null-share", repr(config.null_share),
        "--seed", str(config.seed), "--order", config.order, "--repeat", str(config.repeat),
        "--empty-every", str(config.empty_every), "--weather-shape", config.weather_shape,
    ]  # fmt: skip
    for gap in config.gaps:
        point = gap.point or f"{gap.site}/*"
        args += ["--gap", f"{point}@{ms_to_iso(gap.start_ms)}..{ms_to_iso(gap.end_ms)}"]
    return args + _fault_args(config.faults)


def _fault_args(faults: FaultConfig) -> list[str]:
    args = [
        "--fault-5xx", repr(faults.rate_5xx), "--fault-429", repr(faults.rate_429),
        "--retry-after", str(faults.retry_after_s),
        "--retry-after-date-share", repr(faults.retry_after_date_share),
        "--fault-truncate", repr(faults.rate_truncate), "--fault-slow", repr(faults.rate_slow),
        "--slow-ms", str(faults.slow_ms), "--max-streak", str(faults.max_streak),
        "--short-points-pages", repr(faults.short_points_pages),
        "--fault-seed", "random" if faults.seed is None else str(faults.seed),
    ]  # fmt: skip
    for site in sorted(faults.unauthorized_sites):
        args += ["--unauthorized", site]
    if faults.transfer_limit is not None:
        args += ["--transfer-limit", str(faults.transfer_limit)]
    for late in faults.late:
        args += ["--late", late.spec()]
    return args


@asynccontextmanager
async def run_simulator_process(
    config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0, startup_timeout_s: float = 30.0
) -> AsyncIterator[str]:
    """Serve ``config`` from a child process for the duration of the block; yields the API base URL."""
    config = config or SimConfig()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}
    env["STREAMER_ACE_TOKEN"] = config.token.get_secret_value()  # not on the command line, where ps shows it
    args = ["-m", "streamer.cli", "sim", "serve", "--host", host, "--port", str(port), *config_args(config)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), startup_timeout_s)
        if not line:
            raise RuntimeError(f"simulator exited before listening (exit code {await proc.wait()})")
        yield line.decode().strip()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
