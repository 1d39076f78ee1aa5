"""Unit tests of the ``streamer sim`` commands that need no running server."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from streamer.cli import cli
from streamer.sim.config import Gap, SimConfig
from streamer.sim.model import expected
from streamer.sim.process import config_args

T0 = 1_704_067_200_000


def test_expected_command_prints_expected() -> None:
    """`streamer sim expected` prints exactly expected() for the same options, ISO or epoch ms."""
    args = ["sim", "expected", "--sites", "2", "--points", "150", "--seed", "4", "--site", "site_02"]
    result = CliRunner().invoke(cli, [*args, "--start", "2024-01-01T00:00:00Z", "--end", str(T0 + 3_600_000)])
    assert result.exit_code == 0, result.output
    config = SimConfig(sites=("site_01", "site_02"), points=150, seed=4)
    assert orjson.loads(result.output) == expected(config, "site_02", T0, T0 + 3_600_000)


def test_expected_command_honours_gaps() -> None:
    """--gap leaves the span out, as the server does."""
    gap = "site_01/*@2024-01-01T00:00:00Z..2024-01-01T00:30:00Z"
    args = [
        "sim",
        "expected",
        "--points",
        "100",
        "--site",
        "site_01",
        "--start",
        str(T0),
        "--end",
        str(T0 + 3_600_000),
    ]
    full = orjson.loads(CliRunner().invoke(cli, args).output)
    cut = orjson.loads(CliRunner().invoke(cli, [*args, "--gap", gap]).output)
    assert cut["all"]["count"] == full["all"]["count"] // 2


def test_expected_command_reports_bad_input() -> None:
    """A bad time or unknown site ends with a usage error, not a traceback."""
    bad_time = CliRunner().invoke(
        cli, ["sim", "expected", "--site", "site_01", "--start", "soon", "--end", "1"]
    )
    assert bad_time.exit_code == 2 and "not an ISO 8601" in bad_time.output
    bad_site = CliRunner().invoke(cli, ["sim", "expected", "--site", "x", "--start", "1", "--end", "2"])
    assert bad_site.exit_code == 2 and "unknown site" in bad_site.output


def test_config_args_rebuild_the_config() -> None:
    """The serve options made from a config describe the same model (what a child process serves)."""
    config = SimConfig(sites=("a", "b"), points=77, seed=9, gaps=(Gap("a", "a/ahu_1/x", T0, T0 + 5),))
    args = config_args(config)
    assert args[args.index("--sites") + 1] == "a,b"
    assert args[args.index("--gap") + 1] == "a/ahu_1/x@2024-01-01T00:00:00.000Z..2024-01-01T00:00:00.005Z"
    result = CliRunner().invoke(cli, ["sim", "serve", "--help"])
    for option in args[::2]:
        if option.startswith("--"):
            assert option in result.output, option
