"""The ``streamer`` command. Builds the settings once and hands them to the chosen subcommand.

Each component owns its subcommands in ``streamer/<component>/cli.py``; they are imported only when
used, so ``streamer sim`` does not pay for faust. A subcommand reads ``ctx.obj`` (a ``Settings``).
Time options share ``TIME`` (``streamer.times``; digits that look like epoch seconds warn on stderr).
"""

from __future__ import annotations

import sys
from importlib import import_module
from importlib.resources import files
from pathlib import Path
from typing import Any

import click

from streamer import __version__
from streamer.errors import ConfigError, StreamerError
from streamer.logs import configure_logging
from streamer.settings import load_settings
from streamer.times import seconds_warning, to_ms

# name -> "module:attribute"
SUBCOMMANDS: dict[str, str] = {
    "sim": "streamer.sim.cli:sim",
    "producer": "streamer.producer.cli:producer",
    "backfill": "streamer.producer.cli:backfill",
    "topics": "streamer.producer.cli:topics",
    "migrate": "streamer.sink.cli:migrate",
    "processor": "streamer.processor.cli:processor",
    "dlq": "streamer.processor.dlq_cli:dlq",
    "dev": "streamer.dev.cli:dev",
    "schemas": "streamer.schemas:schemas_command",
    "api": "streamer.query.cli:api",
    "query": "streamer.query.cli:query",
    "status": "streamer.query.cli:status",
    "gaps": "streamer.query.cli:gaps",
}


class TimeParam(click.ParamType):
    """Epoch ms or ISO 8601 (``streamer.times.to_ms``); digits that look like epoch seconds warn."""

    name = "TIME"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            ms = to_ms(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        warn_if_seconds(str(value), param.opts[0] if param else "time")
        return ms


def warn_if_seconds(text: str, name: str) -> None:
    """A warning line on stderr when ``text`` looks like epoch seconds (``times.seconds_warning``)."""
    warning = seconds_warning(text)
    if warning:
        click.echo(f"warning: {name} {warning}", err=True)


TIME = TimeParam()


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in SUBCOMMANDS if self._available(name))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = SUBCOMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        command = getattr(module, attr, None)
        return command if isinstance(command, click.Command) else None

    def _available(self, name: str) -> bool:
        # Looked up as package contents (importlib.resources): works from a wheel or a zip too.
        *packages, module = SUBCOMMANDS[name].split(":")[0].split(".")
        return files(".".join(packages)).joinpath(f"{module}.py").is_file()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(path_type=Path), help="TOML settings file (else STREAMER_CONFIG).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Log level.")
@click.option("--log-format", type=click.Choice(["console", "json"]), help="Log line format.")
@click.version_option(__version__, prog_name="streamer")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, log_level: str | None, log_format: str | None) -> None:
    """streamer: ACE IoT timeseries into ClickHouse through Kafka, and back out."""
    overrides: dict[str, Any] = {}
    if log_level:
        overrides["log_level"] = log_level
    if log_format:
        overrides["log_format"] = log_format
    settings = load_settings(config, **overrides)
    configure_logging(settings, secrets=settings.secret_values())
    ctx.obj = settings


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback."""
    try:
        cli.main(args=argv, prog_name="streamer", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("streamer: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        click.echo(f"streamer: {exc}", err=True)
        sys.exit(2)
    except StreamerError as exc:
        click.echo(f"streamer: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
