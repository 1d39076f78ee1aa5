"""Logging never shows secrets; CLI user errors are one line and a non-zero exit."""

from __future__ import annotations

import logging
import subprocess
import sys

import orjson
import pytest
from pydantic import SecretStr

from streamer.logs import configure_logging, log_event
from streamer.settings import load_settings


def test_secret_filter_redacts_known_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    """A secret that slips into a log message (e.g. an echoed URL) is replaced before it is written."""
    settings = load_settings(log_format="json", ace_token=SecretStr("tok-123-secret"))
    configure_logging(settings, secrets=["tok-123-secret"])
    logging.getLogger("streamer.test").warning("calling https://x/?t=%s", "tok-123-secret")
    err = capsys.readouterr().err
    assert "tok-123-secret" not in err
    assert "**********" in err


def test_json_log_lines_carry_fields(capsys: pytest.CaptureFixture[str]) -> None:
    """--log-format json writes one JSON object per event with its structured fields."""
    configure_logging(load_settings(log_format="json"))
    log_event(logging.getLogger("streamer.test"), logging.INFO, "window done", site="s1", sync_id="abc")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    payload = orjson.loads(line)
    assert payload["event"] == "window done"
    assert payload["site"] == "s1" and payload["sync_id"] == "abc"


def test_bad_setting_is_one_line_and_exit_2() -> None:
    """A bad environment value makes `streamer` print one line naming it and exit 2, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "streamer.cli", "topics", "--help"],
        capture_output=True,
        text=True,
        env={"STREAMER_BATCH_MAX_ROWS": "lots", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "STREAMER_BATCH_MAX_ROWS" in result.stderr
    assert "Traceback" not in result.stderr
