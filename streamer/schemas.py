"""``streamer schemas``: the JSON Schema of every topic's key and value, from the wire models.

The files in ``streamer/kafka_schemas/`` are generated, checked in, shipped in the package (read with
``importlib.resources``) and compared with the models by a test, so the published contract cannot drift
from the code. Topics are named by their default names: the
schemas describe the contract, whatever names a deployment configures.
"""

from __future__ import annotations

import sys
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import click
import orjson
from pydantic import TypeAdapter

from streamer.models import DLQ_HEADERS, DlqLetterState, PointRecord, SamplesRecord, SyncRun, SyncState
from streamer.package_data import KAFKA_SCHEMAS, resource_dir

SCHEMA_DIR: Traversable = resource_dir(KAFKA_SCHEMAS)
DRAFT = "https://json-schema.org/draft/2020-12/schema"

_POINT_KEY = {
    "type": "string",
    "pattern": "^[^/]+/.+$",
    "description": "`{site}/{point}`, utf-8: a point's samples and metadata share a partition.",
}
_SITE_KEY = {"type": "string", "pattern": "^[^/]+$", "description": "`{site}`, utf-8."}


def _model(model: Any, *, nullable: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = TypeAdapter(model | None if nullable else model).json_schema()
    if nullable:
        schema["description"] = nullable
    return schema


def topic_schemas() -> dict[str, dict[str, Any]]:
    """File name → JSON Schema, for every topic's key and value."""
    schemas: dict[str, dict[str, Any]] = {
        "ace.samples.key": {"title": "ace.samples key", **_POINT_KEY},
        "ace.samples.value": _model(SamplesRecord),
        "ace.points.key": {"title": "ace.points key", **_POINT_KEY},
        "ace.points.value": _model(
            PointRecord, nullable="A point record, or null (tombstone): the point was removed or disabled."
        ),
        "ace.sync.key": {"title": "ace.sync key", **_SITE_KEY},
        "ace.sync.value": _model(SyncState),
        "ace.sync_runs.key": {"title": "ace.sync_runs key", **_SITE_KEY},
        "ace.sync_runs.value": _model(SyncRun),
        "ace.dlq.key": {"title": "ace.dlq key", "description": "The failed record's key, as in its topic."},
        "ace.dlq.value": {
            "title": "ace.dlq value",
            "description": "The failed record's value byte for byte (possibly not JSON at all); "
            "why it failed travels in utf-8 headers, listed in x-kafka-headers.",
            "x-kafka-headers": list(DLQ_HEADERS),
        },
        "ace.dlq_state.key": {
            "title": "ace.dlq_state key",
            "type": "string",
            "description": "A dead letter's `letter_id`: "
            "`{source_topic}:{partition}:{offset}` of its first failure.",
        },
        "ace.dlq_state.value": _model(DlqLetterState),
    }
    for name, schema in schemas.items():
        schema.setdefault("title", name.replace(".key", " key").replace(".value", " value"))
    return {f"{name}.json": {"$schema": DRAFT, **schema} for name, schema in schemas.items()}


def render(schema: dict[str, Any]) -> bytes:
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def stale_files(directory: Traversable = SCHEMA_DIR) -> list[str]:
    """The schema files that are missing or differ from the models."""
    return sorted(
        name
        for name, schema in topic_schemas().items()
        if not directory.joinpath(name).is_file() or directory.joinpath(name).read_bytes() != render(schema)
    )


def write_schemas(directory: Path) -> list[str]:
    """Write every schema file; returns the names that changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = stale_files(directory)
    for name, schema in topic_schemas().items():
        if name in changed:
            (directory / name).write_bytes(render(schema))
    return changed


@click.command("schemas")
@click.option("--check", is_flag=True, help="Only check that the files are current (exit 1 if not).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder to write or check (default: the package's kafka_schemas/).",
)
def schemas_command(check: bool, out: Path | None) -> None:
    """Write the JSON Schema of every Kafka topic's key and value into the package's kafka_schemas/."""
    if check:
        folder: Traversable = out or SCHEMA_DIR
        stale = stale_files(folder)
        for name in stale:
            click.echo(f"stale: {folder.joinpath(name)} (run `streamer schemas`)", err=True)
        if stale:
            sys.exit(1)
        click.echo(f"{len(topic_schemas())} schemas current")
        return
    if out is None:
        if not isinstance(SCHEMA_DIR, Path):
            raise click.UsageError("the package is not a folder on disk (zipped?): pass --out DIR")
        out = SCHEMA_DIR
    changed = write_schemas(out)
    click.echo(f"wrote {len(changed)} of {len(topic_schemas())} schemas to {out}")
