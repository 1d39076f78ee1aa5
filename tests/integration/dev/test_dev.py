"""`streamer dev` (what `make dev` runs): simulator, producer and processor together land exact data."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from streamer.settings import Settings
from streamer.sim import SimConfig, expected
from tests.integration.processor import helpers as h

SITE = "site_01"
POINTS = 60


@pytest.mark.kafka
@pytest.mark.slow
def test_dev_runs_the_pipeline_and_lands_exactly_the_windows_it_synced(kafka_settings: Settings) -> None:
    """After `streamer dev --duration 40`, ClickHouse holds exactly the simulator's valid samples of the
    windows the producer recorded as synced (count FINAL, distinct keys, value sum, key checksum)."""
    settings = kafka_settings.model_copy(
        update={
            "sim_port": h.free_port(),
            "processor_web_port": h.free_port(),
            "producer_metrics_port": h.free_port(),
            "poll_interval_s": 5.0,
            "processor_session_timeout_s": 6.0,
            "log_level": "warning",
        }
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamer.cli",
            "dev",
            "--sites",
            "1",
            "--points",
            str(POINTS),
            "--duration",
            "40",
        ],
        env=h.child_env(settings),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    db = settings.clickhouse_database
    runs = h.clickhouse(
        settings,
        f"SELECT min(window_start_ms), max(window_end_ms), count() FROM {db}.sync_runs FINAL "
        f"WHERE site = '{SITE}' AND status = 'ok'",
    )[0]
    start_ms, end_ms, windows = int(runs[0]), int(runs[1]), int(runs[2])
    assert windows >= 2, "the producer should have synced more than one window in 40 s"
    got = h.clickhouse(
        settings,
        "SELECT count(), uniqExact(site, point, ts), sum(toInt64(round(value * 1000))), "
        "sum(CRC32(concat(site, '/', point, '@', toString(toUnixTimestamp64Milli(ts))))) "
        f"FROM {db}.timeseries_raw FINAL WHERE site = '{SITE}' AND point NOT LIKE 'weather.%' "
        f"AND ts >= fromUnixTimestamp64Milli({start_ms}) AND ts < fromUnixTimestamp64Milli({end_ms})",
    )[0]
    valid = expected(SimConfig(sites=(SITE,), points=POINTS), SITE, start_ms, end_ms)["valid"]
    assert valid["count"] > 0
    assert [int(v) for v in got] == [
        valid["count"],
        valid["count"],
        valid["value_milli_sum"],
        valid["key_checksum"],
    ]
    weather = h.clickhouse(
        settings, f"SELECT uniqExact(point) FROM {db}.timeseries_raw WHERE point LIKE 'weather.%'"
    )[0]
    assert int(weather[0]) >= 1


def _dev_run(kafka_settings: Settings) -> tuple[Settings, list[str]]:
    """Settings on free ports and the `streamer dev` command of one small simulated site."""
    settings = kafka_settings.model_copy(
        update={
            "sim_port": h.free_port(),
            "processor_web_port": h.free_port(),
            "producer_metrics_port": h.free_port(),
            "log_level": "warning",
        }
    )
    return settings, [sys.executable, "-m", "streamer.cli", "dev", "--sites", "1", "--points", str(POINTS)]


@pytest.mark.kafka
def test_dev_stopped_by_sigterm_stops_its_parts(kafka_settings: Settings, tmp_path: Path) -> None:
    """SIGTERM to `streamer dev` (a `kill`, a closed terminal) stops it cleanly and leaves none of its
    parts running, although they run in sessions of their own; writing to a file, it prints progress
    lines while it runs, and its final table shows every part's real end state."""
    settings, args = _dev_run(kafka_settings)
    args += ["--progress-every", "1"]
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(args, env=h.child_env(settings), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        parts: list[psutil.Process] = []
        while len(parts) < 3:
            assert time.monotonic() < deadline, "streamer dev did not start its three parts"
            assert dev.poll() is None, log.read_text()[-3000:]
            parts = psutil.Process(dev.pid).children()
            time.sleep(0.5)
        time.sleep(5)  # running, not just spawned
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=150)
    finally:
        if dev.poll() is None:
            dev.kill()
    out = log.read_text()
    assert dev.returncode == 0, out[-3000:]
    assert "stopping" in out and "Ctrl-C again to abort" in out
    assert out.count("dev ") >= 3 and "next-poll=" in out  # progress lines before the end
    final = out[out.rindex("streamer dev —") :]
    assert final.count("exited") == 3 and "running" not in final, final
    gone, alive = psutil.wait_procs(parts, timeout=10)
    assert alive == [], [p.cmdline() for p in alive]
    assert len(gone) == 3


@pytest.mark.kafka
def test_dev_takes_a_repeated_stop_signal_as_one_request(kafka_settings: Settings, tmp_path: Path) -> None:
    """Ctrl-C under make delivers SIGINT and then make's SIGTERM: the drain goes on (no abort), the parts
    stop cleanly and every one of them exited 0."""
    settings, args = _dev_run(kafka_settings)
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(args, env=h.child_env(settings), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while "process producer" not in log.read_text() and "producer=running" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            assert dev.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        time.sleep(5)
        dev.send_signal(signal.SIGINT)
        time.sleep(0.2)
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=150)
    finally:
        if dev.poll() is None:
            dev.kill()
    text = log.read_text()
    assert dev.returncode == 0, text[-3000:]
    assert "aborted" not in text
    final = text[text.rindex("streamer dev —") :]
    assert final.count("exited 0") == 3, final
