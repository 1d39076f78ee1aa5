"""``streamer dlq list|replay|ack|purge``: inspect the dead-letter queue and make it converge."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

import click

from streamer.cli import TIME
from streamer.models import LetterStatus
from streamer.processor import dlq_actions, dlq_tools
from streamer.processor.dlq_actions import Filters, Plan
from streamer.settings import Settings


def _filters(error_class: str | None, since: int | None, ids: tuple[str, ...]) -> Filters:
    return Filters(error_class, since, frozenset(ids))


def _filter_options(command: click.decorators.FC) -> click.decorators.FC:
    command = click.option("--id", "ids", multiple=True, help="Only this letter id (repeatable).")(command)
    command = click.option(
        "--since",
        type=TIME,
        default=None,
        help="Only letters dead-lettered at or after (epoch ms or ISO 8601).",
    )(command)
    return click.option("--error-class", default=None, help="Only letters of this error class.")(command)


def _classes(counts: Counter[str]) -> str:
    return ", ".join(f"{name}={n}" for name, n in counts.most_common()) or "none"


def _nothing_matched(plan: Plan, filters: Filters) -> None:
    """A filter that matches no letter is a mistake worth saying: one line, exit 1."""
    if plan.matched == 0 and not filters.empty:
        click.echo(f"no dead letter matched; open letters by class: {_classes(plan.open_classes)}", err=True)
        sys.exit(1)


@click.group()
def dlq() -> None:
    """Inspect, replay, acknowledge and purge dead letters."""


@dlq.command("list")
@click.option("--examples", default=3, show_default=True, help="Examples shown per error class.")
@click.pass_obj
def list_(settings: Settings, examples: int) -> None:
    """Summarise the letters: by status, the open ones by error class and stage, a few examples."""
    summary = asyncio.run(dlq_tools.read_summary(settings, examples=examples))
    for line in dlq_tools.format_summary(summary, settings.topic_dlq):
        click.echo(line)


@dlq.command()
@_filter_options
@click.option(
    "--again", is_flag=True, help="Also letters replayed before (they failed again or are pending)."
)
@click.option(
    "--force", is_flag=True, help="Also letters whose failure depends only on the record (decode, normalise)."
)
@click.option("--dry-run", is_flag=True, help="Count what would be replayed; publish nothing.")
@click.pass_obj
def replay(
    settings: Settings,
    error_class: str | None,
    since: int | None,
    ids: tuple[str, ...],
    again: bool,
    force: bool,
    dry_run: bool,
) -> None:
    """Republish matching open letters to their source topic; a replay that fails again is not re-added."""
    filters = _filters(error_class, since, ids)

    async def run() -> tuple[Plan, int]:
        found = await dlq_actions.survey(settings)
        plan = dlq_actions.plan_replay(found.letters.values(), filters, again=again, force=force)
        if dry_run or not plan.selected:
            return plan, 0
        return plan, await dlq_actions.replay(settings, plan, found.states)

    plan, replayed = asyncio.run(run())
    _nothing_matched(plan, filters)
    if plan.needs_force:
        click.echo(
            f"warning: skipped {sum(plan.needs_force.values())} letter(s) that cannot succeed without a fix "
            f"({_classes(plan.needs_force)}): the record or the code must change first; --force replays them",
            err=True,
        )
    if plan.replayed:
        click.echo(f"skipped {plan.replayed} letter(s) replayed before (--again replays them)", err=True)
    if plan.closed:
        click.echo(f"skipped {plan.closed} acknowledged or purged letter(s)", err=True)
    verb = "would replay" if dry_run else "replayed"
    count = len(plan.selected) if dry_run else replayed
    click.echo(f"{verb} {count} of {plan.matched} matching dead letters")
    sys.stdout.flush()


def _close(settings: Settings, filters: Filters, every: bool, status: LetterStatus) -> Plan:
    if filters.empty and not every:
        raise click.UsageError("name the letters (--error-class, --since, --id) or pass --all")

    async def run() -> Plan:
        found = await dlq_actions.survey(settings)
        plan = dlq_actions.plan_close(found.letters.values(), filters)
        await dlq_actions.close(settings, plan, status)
        return plan

    plan = asyncio.run(run())
    _nothing_matched(plan, filters)
    return plan


@dlq.command()
@_filter_options
@click.option("--all", "every", is_flag=True, help="Every open letter.")
@click.pass_obj
def ack(
    settings: Settings, error_class: str | None, since: int | None, ids: tuple[str, ...], every: bool
) -> None:
    """Acknowledge letters: handled, no longer listed as open nor replayed (kept on the topic)."""
    plan = _close(settings, _filters(error_class, since, ids), every, "acked")
    click.echo(f"acknowledged {len(plan.selected)} of {plan.matched} matching dead letters")


@dlq.command()
@_filter_options
@click.option("--all", "every", is_flag=True, help="Every open letter.")
@click.pass_obj
def purge(
    settings: Settings, error_class: str | None, since: int | None, ids: tuple[str, ...], every: bool
) -> None:
    """Close letters for good, and delete the DLQ's records below the oldest letter still open."""
    plan = _close(settings, _filters(error_class, since, ids), every, "purged")
    cut = asyncio.run(dlq_actions.delete_closed_prefix(settings))
    deleted = ", ".join(f"partition {p} below offset {o}" for p, o in sorted(cut.items())) or "none"
    click.echo(
        f"purged {len(plan.selected)} of {plan.matched} matching dead letters; records deleted: {deleted}"
    )
