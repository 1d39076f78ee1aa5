"""`streamer producer` options that end before any connection."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from streamer.producer.cli import backfill, producer
from streamer.settings import Settings


@pytest.mark.parametrize("args", [["--from", "0"], ["--reset-site", "s"]])
def test_reset_site_and_from_go_together(base_settings: Settings, args: list[str]) -> None:
    """--reset-site without --from (or the reverse) is a usage error in one line, nothing written."""
    result = CliRunner().invoke(producer, args, obj=base_settings)
    assert result.exit_code == 2
    assert "--reset-site and --from go together" in result.output


def test_time_options_read_the_one_rule() -> None:
    """--start/--end/--from/--now floor sub-ms digits and parse exactly, like every other time input."""
    from streamer.cli import TIME

    assert TIME.convert("2024-01-01T00:00:00.0009Z", None, None) == 1_704_067_200_000  # floor, not round
    assert TIME.convert("1970-07-14T18:37:25.448Z", None, None) == 16_828_645_448
    assert TIME.convert("2109-05-13T07:24:52.030Z", None, None) == 4_397_873_092_030


def test_backfill_with_epoch_seconds_warns_on_stderr(base_settings: Settings) -> None:
    """--end 17961 looks like epoch seconds: a warning line on stderr before the usage error."""
    result = CliRunner().invoke(
        backfill, ["--site", "s", "--start", "1704067200000", "--end", "17961"], obj=base_settings
    )
    assert result.exit_code == 2 and "--end must be after --start" in result.stderr
    assert result.stderr.startswith(
        "warning: --end 17961 is read as epoch milliseconds, 1970-01-01T00:00:17.961Z"
    )
    assert "--start" not in result.stderr.splitlines()[0]  # epoch ms of 2024: no warning


def test_backfill_does_not_import_the_metrics_server() -> None:
    """`streamer backfill` starts without aiohttp's server (0.35 s of import a backfill never uses; the
    ACE client's transport needs only its client)."""
    code = "import sys, streamer.cli, streamer.producer.cli; print('aiohttp.web' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
