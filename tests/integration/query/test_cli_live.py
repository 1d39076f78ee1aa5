"""``streamer query|gaps|status`` as a user runs them, against a live API (embedded ClickHouse)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from streamer.query.backend import LocalBackend
from streamer.query.params import TimeRange
from streamer.settings import Settings
from tests.integration.query.conftest import MINUTE, T0, Data, LiveServer


def _streamer(live: LiveServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}
    env |= {"STREAMER_DATA_DIR": str(tmp_path / "cli-data"), "STREAMER_API_URL": live.url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "streamer.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_query_json_equals_the_api_and_table_shows_iso_times(live: LiveServer, tmp_path: Path) -> None:
    """--format json prints the API's answer; the default table shows UTC ISO times and values."""
    window = ["--site", "s1", "--points", "temp", "--start", str(T0), "--end", "2023-11-14T22:10:00Z"]
    done = _streamer(live, tmp_path, "query", *window, "--resolution", "raw", "--format", "json")
    assert done.returncode == 0, done.stderr
    api = httpx.get(
        f"{live.url}/api/v1/sites/s1/samples",
        params={"points": "temp", "start": T0, "end": T0 + 10 * MINUTE, "resolution": "raw"},
    ).json()
    assert json.loads(done.stdout) == api and api["row_count"] == 10
    table = _streamer(live, tmp_path, "query", *window, "--resolution", "raw")
    assert table.returncode == 0 and "2023-11-14T22:09:00.000Z" in table.stdout and "10 rows" in table.stdout
    csv = _streamer(live, tmp_path, "query", *window, "--resolution", "5m", "--format", "csv")
    assert csv.stdout.splitlines()[0] == "point_name,timestamp,value,min,max,count"
    assert len(csv.stdout.splitlines()) == 3


def test_gaps_and_status_tables(live: LiveServer, tmp_path: Path) -> None:
    """gaps lists gappy's two holes; status shows both sites, the failed run's error and Kafka's state."""
    gaps = _streamer(
        live, tmp_path, "gaps", "--site", "s1", "--start", str(T0), "--end", str(T0 + 180 * MINUTE)
    )
    assert gaps.returncode == 0, gaps.stderr
    assert "3 points judged: 2 complete, 1 with gaps, 0 silent" in gaps.stdout
    # the summary's worst list and the table's row name gappy; its longest gap is the 10-minute one
    assert gaps.stdout.count("gappy") == 2 and "2023-11-14T22:39:00.000Z" in gaps.stdout
    none = _streamer(
        live,
        tmp_path,
        "gaps",
        "--site",
        "s1",
        "--start",
        str(T0),
        "--end",
        str(T0 + 180 * MINUTE),
        "--limit",
        "0",
    )
    assert "... 1 more point: --limit N" in none.stdout and "┃ point" not in none.stdout
    full = _streamer(
        live,
        tmp_path,
        "gaps",
        "--site",
        "s1",
        "--start",
        str(T0),
        "--end",
        str(T0 + 180 * MINUTE),
        "--format",
        "json",
    )
    body = json.loads(full.stdout)
    assert body["summary"]["with_gaps"] == 1 and len(body["points"][0]["gaps"]) == 2
    status = _streamer(live, tmp_path, "status")
    assert status.returncode == 0, status.stderr
    for expected in ("s1", "s2", "AceTransientError: 503 from the API", "Kafka at 127.0.0.1:1 unreachable"):
        assert expected in status.stdout


def test_user_errors_are_one_line_and_exit_1(live: LiveServer, tmp_path: Path) -> None:
    """An unknown site from the API becomes one stderr line, exit 1, no traceback."""
    done = _streamer(live, tmp_path, "query", "--site", "nowhere", "--points", "a")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "streamer: QueryError: unknown site 'nowhere': GET /api/v1/sites lists the known sites"
    ]


async def test_local_backend_answers_like_the_service(filled: tuple[Settings, Data]) -> None:
    """With a ClickHouse the CLI can read itself, the in-process backend gives the same rows."""
    settings, data = filled
    backend = LocalBackend(settings)
    try:
        answer = await backend.samples("s1", ["fan"], TimeRange(T0, T0 + 5 * MINUTE), "raw")
    finally:
        await backend.aclose()
    assert [(r["timestamp"], r["value"]) for r in answer["rows"]] == data.series(
        "s1", "fan", T0, T0 + 5 * MINUTE
    )
