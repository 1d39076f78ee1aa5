"""``streamer migrate``: bring the ClickHouse schema up to date."""

from __future__ import annotations

import click

from streamer.settings import Settings
from streamer.sink.client import describe_target
from streamer.sink.writer import Sink


@click.command()
@click.option("--check", is_flag=True, help="Apply nothing; fail when a migration is missing.")
@click.pass_obj
def migrate(settings: Settings, check: bool) -> None:
    """Apply the missing ClickHouse migrations (shipped in the package), in order (idempotent)."""
    with Sink(settings) as sink:
        if check:
            sink.check_schema()
            click.echo(f"{describe_target(settings)}: up to date")
            return
        applied = sink.migrate()
    for migration in applied:
        click.echo(f"applied {migration.name}")
    if not applied:
        click.echo(f"{describe_target(settings)}: up to date")
