"""streamer/kafka_schemas/: generated from the wire models, checked in, shipped as package data, current."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from streamer.models import SamplesRecord
from streamer.schemas import SCHEMA_DIR, schemas_command, stale_files, topic_schemas

TOPICS = ["ace.samples", "ace.points", "ace.sync", "ace.sync_runs", "ace.dlq", "ace.dlq_state"]


def test_checked_in_schemas_are_current() -> None:
    """Every topic's key and value schema file exists and equals what the models generate now."""
    assert sorted(topic_schemas()) == sorted(f"{t}.{part}.json" for t in TOPICS for part in ("key", "value"))
    assert stale_files(SCHEMA_DIR) == []


def test_schemas_are_package_data() -> None:
    """The schema files are read from the package with importlib.resources."""
    assert files("streamer").joinpath("kafka_schemas") == SCHEMA_DIR
    assert sorted(f.name for f in SCHEMA_DIR.iterdir()) == sorted(topic_schemas())


def test_check_without_out_reads_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`streamer schemas --check` from another directory checks the package's files and passes."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(schemas_command, ["--check"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "12 schemas current"


def test_samples_schema_describes_the_wire_record() -> None:
    """The ace.samples value schema names the record's fields and requires site, point and samples."""
    schema = orjson.loads(SCHEMA_DIR.joinpath("ace.samples.value.json").read_bytes())
    assert set(schema["properties"]) == set(SamplesRecord.model_fields)
    assert {"site", "point", "samples"} <= set(schema["required"])


def test_points_value_allows_tombstones() -> None:
    """A null ace.points value (tombstone) is valid by the schema."""
    schema = orjson.loads(SCHEMA_DIR.joinpath("ace.points.value.json").read_bytes())
    assert {"type": "null"} in schema["anyOf"]


def test_command_writes_then_check_passes(tmp_path: Path) -> None:
    """`streamer schemas --out DIR` writes all files; `--check` then passes, and fails after an edit."""
    runner = CliRunner()
    assert runner.invoke(schemas_command, ["--out", str(tmp_path)]).exit_code == 0
    assert len(list(tmp_path.glob("*.json"))) == 12
    assert runner.invoke(schemas_command, ["--check", "--out", str(tmp_path)]).exit_code == 0
    (tmp_path / "ace.sync.value.json").write_text("{}")
    result = runner.invoke(schemas_command, ["--check", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "ace.sync.value.json" in result.output
