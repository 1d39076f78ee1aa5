"""Secrets and output: no secret in a log line (tracebacks, structured fields, the ACE token file), none
in a settings error (a misspelled key in the TOML file), and stored text never read as rich markup by
`streamer status`, `query` and `gaps` (no crash, no spoofed styling, no terminal escapes)."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr
from rich.console import Console

from streamer.errors import ConfigError
from streamer.logs import configure_logging, log_event
from streamer.models import SyncRun
from streamer.query import render
from streamer.settings import Settings, load_settings
from streamer.sink.rows import PointRow
from streamer.sink.writer import Sink
from tests.security.conftest import RecordingServer

SECRET = 'tok-"q\\uote-9f31c'  # a quote and a backslash: JSON escapes them, redaction must not care
MARKUP_SITE = "[/]"
MARKUP_POINT = "[bold red]p[/]"
SPOOF_ERROR = "[/][bold green]OK: all good[/] \x1b[2J"
T0 = 1_700_000_000_000


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_exception_tracebacks_are_redacted(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A logged exception whose message (and cause) hold the API token shows neither, in both formats."""
    settings = load_settings(log_format=fmt, api_token=SecretStr(SECRET))
    configure_logging(settings, secrets=[SECRET])
    try:
        try:
            raise ValueError(f"inner {SECRET}")
        except ValueError as exc:
            raise RuntimeError(f"connecting with Bearer {SECRET} failed") from exc
    except RuntimeError:
        logging.getLogger("streamer.test").exception("call failed")
    err = capsys.readouterr().err
    assert "RuntimeError" in err and "inner" in err
    assert SECRET not in err and "9f31c" not in err and "**********" in err


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_structured_fields_are_redacted(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A structured field (log_event's keyword fields) holding the ClickHouse password is redacted."""
    settings = load_settings(log_format=fmt, clickhouse_password=SecretStr(SECRET))
    configure_logging(settings, secrets=[SECRET])
    log_event(logging.getLogger("streamer.test"), logging.WARNING, "insert", dsn=f"http://u:{SECRET}@ch")
    err = capsys.readouterr().err
    assert "insert" in err and ("dsn=" in err or '"dsn"' in err)
    assert "9f31c" not in err and "**********" in err


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_ace_token_from_its_file_is_redacted(fmt: str, tmp_path: Path) -> None:
    """With STREAMER_ACE_TOKEN_FILE, the `streamer` command's logging redacts the file's token."""
    token_file = tmp_path / "ace-token"
    token_file.write_text(SECRET + "\n")
    script = (
        "import logging, sys\n"
        "from streamer.cli import cli\n"
        "cli.main(['--log-format', sys.argv[1], 'topics', '--help'], standalone_mode=False)\n"
        "logging.getLogger('streamer.test').error('GET /sites Authorization: Bearer %s', sys.argv[2])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, fmt, SECRET],
        env={"PATH": "/usr/bin:/bin", "STREAMER_ACE_TOKEN_FILE": str(token_file)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Authorization: Bearer **********" in done.stderr and "9f31c" not in done.stderr


def test_misspelled_secret_key_in_the_config_file_is_not_echoed(tmp_path: Path) -> None:
    """`clickhouse_pasword = "…"` in the TOML file: the error names the key and the likely intended one,
    never the value; `streamer --config` prints it as one line and exits 2."""
    config = tmp_path / "streamer.toml"
    config.write_text(f'clickhouse_pasword = "{SECRET[:4]}-hunter2"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    message = str(info.value)
    assert "clickhouse_pasword" in message and "clickhouse_password" in message
    assert "hunter2" not in message
    done = subprocess.run(
        [sys.executable, "-m", "streamer.cli", "--config", str(config), "topics", "--help"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "clickhouse_pasword" in done.stderr and "hunter2" not in done.stderr


def _shown(renderable: object) -> str:
    console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=250)
    console.print(renderable)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text


def test_rendered_tables_show_markup_and_escapes_as_text() -> None:
    """Names and errors holding rich markup and an escape sequence render literally: no crash, no
    styling taken from the data, no ESC byte from the data reaching the terminal."""
    samples = {
        "site": MARKUP_SITE,
        "row_count": 1,
        "resolution": "raw",
        "start": T0,
        "end": T0 + 60_000,
        "columns": ["point_name", "timestamp", "value"],
        "rows": [{"point_name": MARKUP_POINT, "timestamp": T0, "value": 1.0}],
    }
    point = {
        "point_name": MARKUP_POINT,
        "collect_interval_s": 60,
        "silent": False,
        "missing": 2,
        "gaps": [{"start": 0, "end": 1, "missing": 2}],
    }
    worst = {"point_name": MARKUP_POINT, "gaps": 1, "missing": 2}
    counts = {"points_judged": 1, "complete": 0, "with_gaps": 1, "silent": 0, "not_judged": 0}
    gaps = {
        "site": MARKUP_SITE,
        "start": T0,
        "end": T0 + 60_000,
        "until": T0 + 60_000,
        "until_source": "end",
        "tolerance": 2.5,
        "summary": counts | {"missing_samples": 2, "worst": [worst]},
        "points": [point],
    }
    for view in (render.samples_table(samples), render.gaps_view(gaps)):
        out = _shown(view)
        assert MARKUP_POINT in out and MARKUP_SITE in out


def _fill_with_markup(settings: Settings) -> None:
    """A site, a point and a sync error whose names are rich markup, with samples and one gap."""
    with Sink(settings) as sink:
        sink.migrate()
        sink.insert_points([PointRow(site=MARKUP_SITE, point=MARKUP_POINT, version=1, collect_interval=60)])
        times = [T0 + i * 60_000 for i in (0, 1, 2, 10, 11)]
        n = len(times)
        sink.insert_samples([MARKUP_SITE] * n, [MARKUP_POINT] * n, times, [1.0] * n, "markup")
        run = SyncRun(
            sync_id="r1",
            site=MARKUP_SITE,
            window_start_ms=T0,
            window_end_ms=T0 + 3_600_000,
            kind="incremental",
            started_at_ms=T0 + 3_600_000,
            duration_ms=1,
            api_calls=1,
            pages=1,
            samples_fetched=0,
            records_published=0,
            samples_published=0,
            errors=1,
            status="failed",
            error=SPOOF_ERROR,
        )
        sink.insert_sync_runs([run])


def test_cli_prints_stored_markup_literally(tmp_path: Path) -> None:
    """`streamer status`, `query` and `gaps` against a live API whose store holds markup names and a
    spoofing error: exit 0, the text shown as stored, no green "OK" styling, no ESC[2J, no traceback."""
    settings = load_settings(data_dir=tmp_path / "data", kafka_bootstrap_servers="127.0.0.1:1")
    _fill_with_markup(settings)
    span = ["--start", str(T0), "--end", str(T0 + 720_000)]
    commands = {
        "status": ["status"],
        "query": ["query", "--site", MARKUP_SITE, "--points", MARKUP_POINT, *span, "--resolution", "raw"],
        "gaps": ["gaps", "--site", MARKUP_SITE, *span],
    }
    outputs = {}
    with RecordingServer(settings) as api:
        env = {
            "PATH": "/usr/bin:/bin",
            "STREAMER_API_URL": api.url,
            "STREAMER_DATA_DIR": str(tmp_path / "cli"),
        }
        env |= {"TERM": "xterm-256color", "COLUMNS": "250", "FORCE_COLOR": "1"}
        for name, args in commands.items():
            done = subprocess.run(
                [sys.executable, "-m", "streamer.cli", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0 and "Traceback" not in done.stderr, (name, done.stderr[-1500:])
            outputs[name] = done.stdout
    assert "[/][bold green]OK: all good[/] \\x1b[2J" in outputs["status"]
    assert "\x1b[2J" not in outputs["status"] and "\x1b[1;32m" not in outputs["status"]
    assert MARKUP_SITE in outputs["status"]
    assert MARKUP_POINT in outputs["query"] and "\x1b[1;31m" not in outputs["query"]
    assert MARKUP_POINT in outputs["gaps"] and "\x1b[1;31m" not in outputs["gaps"]
