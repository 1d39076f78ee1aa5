"""Migration files: naming, ordering, statement splitting and placeholder rendering (no engine)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from streamer.errors import SchemaError
from streamer.sink import rollups
from streamer.sink.migrations import MIGRATIONS_DIR, load_migrations, render, split_statements


def test_shipped_migrations_are_numbered_without_gaps() -> None:
    """The package's migrations load in version order 1..N with their file stems as names."""
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    stems = sorted(f.name.removesuffix(".sql") for f in MIGRATIONS_DIR.iterdir() if f.name.endswith(".sql"))
    assert [m.name for m in migrations] == stems
    assert migrations[0].name == "001_timeseries_raw"


def test_migrations_are_package_data_found_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migrations are read from the package (importlib.resources), not the working directory."""
    monkeypatch.chdir(tmp_path)
    assert files("streamer.sink").joinpath("ddl") == MIGRATIONS_DIR
    assert len(load_migrations()) >= 6


def test_no_migration_found_is_an_error_not_up_to_date(tmp_path: Path) -> None:
    """An empty or missing migrations folder raises SchemaError (never "nothing to apply")."""
    with pytest.raises(SchemaError, match=r"^no migration files \(NNN_name\.sql\) found in .*reinstall"):
        load_migrations(tmp_path)
    with pytest.raises(SchemaError, match="no migration files"):
        load_migrations(tmp_path / "missing")


def test_shipped_migrations_render_without_placeholders() -> None:
    """Every shipped statement renders with the database quoted and no placeholder left over."""
    for migration in load_migrations():
        for statement in split_statements(render(migration.sql, "streamer")):
            assert "{" not in statement.replace("{db:", ""), (migration.name, statement)
            assert "`streamer`." in statement, (migration.name, statement)


def test_bad_file_name_and_repeated_version_are_refused(tmp_path: Path) -> None:
    """A file not named NNN_name.sql, or two files with one version, stop loading with a clear error."""
    (tmp_path / "001_a.sql").write_text("SELECT 1")
    (tmp_path / "1_b.sql").write_text("SELECT 1")
    with pytest.raises(SchemaError, match=r"1_b\.sql is not named NNN_name\.sql"):
        load_migrations(tmp_path)
    (tmp_path / "1_b.sql").unlink()
    (tmp_path / "001_c.sql").write_text("SELECT 1")
    with pytest.raises(SchemaError, match="001_a and 001_c share a version"):
        load_migrations(tmp_path)


def test_split_ignores_semicolons_in_quotes_and_comments() -> None:
    """Statements split on ``;`` only outside string literals, identifiers and comments."""
    sql = """
    -- header; with a semicolon
    CREATE TABLE t (a String DEFAULT 'x;y', `b;c` UInt8); /* block; comment */
    INSERT INTO t VALUES ('it\\'s; fine', 1);

    ;
    SELECT 1
    """
    assert split_statements(sql) == [
        "CREATE TABLE t (a String DEFAULT 'x;y', `b;c` UInt8)",
        "INSERT INTO t VALUES ('it\\'s; fine', 1)",
        "SELECT 1",
    ]


def test_render_single_node_and_cluster_variant() -> None:
    """Single node keeps the engines; the cluster variant adds ON CLUSTER and Replicated engines."""
    sql = (
        "CREATE TABLE {db}.t {on_cluster} (a Int8) ENGINE = ReplacingMergeTree(v) ORDER BY a;\n"
        "CREATE TABLE {db}.u {on_cluster} (a Int8) ENGINE = AggregatingMergeTree ORDER BY a;\n"
        "CREATE TABLE {db}.w {on_cluster} (a Int8) ENGINE = MergeTree ORDER BY a"
    )
    single = render(sql, "db1")
    assert (
        single.splitlines()[0] == "CREATE TABLE `db1`.t  (a Int8) ENGINE = ReplacingMergeTree(v) ORDER BY a;"
    )
    cluster = render(sql, "db1", cluster="c")
    assert cluster.splitlines() == [
        "CREATE TABLE `db1`.t ON CLUSTER `c` (a Int8) ENGINE = ReplicatedReplacingMergeTree(v) ORDER BY a;",
        "CREATE TABLE `db1`.u ON CLUSTER `c` (a Int8) ENGINE = ReplicatedAggregatingMergeTree ORDER BY a;",
        "CREATE TABLE `db1`.w ON CLUSTER `c` (a Int8) ENGINE = ReplicatedMergeTree ORDER BY a",
    ]


@pytest.mark.parametrize("database", ["bad-name", "x`; DROP TABLE y", "1abc"])
def test_render_refuses_names_that_are_not_identifiers(database: str) -> None:
    """A database name that would need quoting (or could inject SQL) is refused."""
    with pytest.raises(SchemaError, match="not a plain identifier"):
        render("SELECT 1 FROM {db}.t", database)


def test_no_migration_or_schema_file_left_outside_the_package() -> None:
    """The old schemas/ folder stays gone: a file there would never reach the wheel."""
    root = Path(__file__).resolve().parents[3]
    stray = sorted(str(p.relative_to(root)) for p in (root / "schemas").rglob("*") if p.is_file())
    assert stray == [], "move migrations to streamer/sink/ddl/, Kafka schemas to streamer/kafka_schemas/"


def test_compact_rollups_migration_runs_on_every_replica_and_backfills_as_the_sink_recomputes() -> None:
    """008 in the cluster variant: every DDL statement ON CLUSTER, rollup_1h replicated (the backfill
    INSERT runs once, replication carries it); the backfill is the sink's recompute SQL with no filter
    and the server's clock as the version."""
    (migration,) = [m for m in load_migrations() if m.name == "008_compact_rollups"]
    statements = split_statements(render(migration.sql, "db1", cluster="c"))
    assert all("ON CLUSTER `c`" in s for s in statements if not s.startswith("INSERT"))
    assert any("ENGINE = ReplicatedReplacingMergeTree(computed_at)" in s for s in statements)
    backfill = split_statements(render(migration.sql, "db1"))[-1]
    assert backfill == rollups.recompute_sql("`db1`", where="1", version="now64(9, 'UTC')")
