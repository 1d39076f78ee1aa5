"""`streamer producer` options that end before any connection."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from streamer.producer.cli import producer
from streamer.settings import Settings


@pytest.mark.parametrize("args", [["--from", "0"], ["--reset-site", "s"]])
def test_reset_site_and_from_go_together(base_settings: Settings, args: list[str]) -> None:
    """--reset-site without --from (or the reverse) is a usage error in one line, nothing written."""
    result = CliRunner().invoke(producer, args, obj=base_settings)
    assert result.exit_code == 2
    assert "--reset-site and --from go together" in result.output
