"""ClickHouse schema migrations: ``streamer/sink/ddl/NNN_name.sql``, applied in order, recorded.

The files are package data, read with ``importlib.resources`` (``streamer.package_data``): an
installed ``streamer migrate`` finds them from any working directory, and finding none is an error.

A migration file may hold several statements separated by ``;``. Placeholders: ``{db}`` is the
database, ``{on_cluster}`` is empty (or ``ON CLUSTER name`` in the cluster variant). Every statement
is written to be re-runnable (``IF NOT EXISTS``, idempotent backfills), so a migration interrupted
half-way completes on the next ``streamer migrate``; a migration is recorded only once all its
statements ran.

Cluster variant (the seam, not exercised by the embedded engine): ``render(sql, db, cluster=NAME)``
adds ``ON CLUSTER NAME`` and turns every ``*MergeTree`` engine into its ``Replicated*`` form with the
server's default replica path. That yields a replicated single-shard deployment; sharding would add
``Distributed`` tables in front of these, which no migration creates yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable

from clickhouse_connect.driver.client import Client

from streamer.errors import SchemaError
from streamer.package_data import MIGRATIONS, resource_dir

MIGRATIONS_DIR: Traversable = resource_dir(MIGRATIONS)
_FILE_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_ENGINE_RE = re.compile(r"\bENGINE\s*=\s*(Replacing|Aggregating|Summing|Collapsing|)MergeTree\b")
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS {db}.schema_migrations {on_cluster}
(
    version    UInt32,
    name       String,
    applied_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: ``version`` 3 and ``name`` "003_rollups" for ``003_rollups.sql``."""

    version: int
    name: str
    sql: str


def load_migrations(directory: Traversable = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations of ``directory`` in version order; none, a bad file name or a repeated version raise."""
    files = [f for f in directory.iterdir() if f.name.endswith(".sql")] if directory.is_dir() else []
    if not files:
        # Never "up to date": an installation without its migrations would pass every schema check.
        raise SchemaError(f"no migration files (NNN_name.sql) found in {directory}: reinstall streamer")
    migrations: dict[int, Migration] = {}
    for file in sorted(files, key=lambda f: f.name):
        match = _FILE_RE.match(file.name)
        if match is None:
            raise SchemaError(f"migration file {file.name} is not named NNN_name.sql")
        version = int(match.group(1))
        stem = file.name.removesuffix(".sql")
        if version in migrations:
            raise SchemaError(f"migrations {migrations[version].name} and {stem} share a version")
        migrations[version] = Migration(version, stem, file.read_text(encoding="utf-8"))
    return [migrations[v] for v in sorted(migrations)]


def render(sql: str, database: str, cluster: str | None = None) -> str:
    """Fill the placeholders; with ``cluster``, add ON CLUSTER and use Replicated engines."""
    for name, value in (("database", database), ("cluster", cluster or "")):
        if value and not _IDENT_RE.match(value):
            raise SchemaError(f"ClickHouse {name} name {value!r} is not a plain identifier")
    text = sql.replace("{db}", f"`{database}`")
    if cluster:
        text = text.replace("{on_cluster}", f"ON CLUSTER `{cluster}`")
        text = _ENGINE_RE.sub(lambda m: f"ENGINE = Replicated{m.group(1)}MergeTree", text)
    return text.replace("{on_cluster}", "")


def split_statements(sql: str) -> list[str]:
    """Split a script on ``;`` outside quotes and comments; comments are dropped, blanks skipped."""
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if sql.startswith("--", i):
            i = _skip_to(sql, "\n", i)
            continue
        if sql.startswith("/*", i):
            i = _skip_to(sql, "*/", i + 2)
            continue
        if ch in "'\"`":
            end = _quoted_end(sql, i)
            current.append(sql[i:end])
            i = end
            continue
        if ch == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


def _skip_to(sql: str, marker: str, start: int) -> int:
    end = sql.find(marker, start)
    return len(sql) if end < 0 else end + len(marker)


def _quoted_end(sql: str, start: int) -> int:
    """Index just past the quoted literal opening at ``start`` (backslash escapes honoured)."""
    quote, i = sql[start], start + 1
    while i < len(sql):
        if sql[i] == "\\":
            i += 2
            continue
        if sql[i] == quote:
            return i + 1
        i += 1
    return len(sql)


def applied_versions(client: Client, database: str) -> set[int]:
    """Versions recorded in ``schema_migrations``; empty when the table does not exist yet."""
    exists = client.command(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'schema_migrations'",
        parameters={"db": database},
    )
    if not int(str(exists)):
        return set()
    rows = client.query(f"SELECT DISTINCT version FROM `{database}`.schema_migrations").result_rows
    return {int(row[0]) for row in rows}


def missing_migrations(
    client: Client, database: str, migrations: list[Migration] | None = None
) -> list[Migration]:
    """The known migrations not recorded in the database, in order."""
    applied = applied_versions(client, database)
    return [m for m in (migrations or load_migrations()) if m.version not in applied]


def migrate(
    client: Client, database: str, migrations: list[Migration] | None = None, cluster: str | None = None
) -> list[Migration]:
    """Apply every missing migration in order; returns those applied now (empty: up to date)."""
    client.command(render(_BOOTSTRAP, database, cluster))
    done: list[Migration] = []
    for migration in missing_migrations(client, database, migrations):
        for statement in split_statements(render(migration.sql, database, cluster)):
            client.command(statement)
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name]],
            column_names=["version", "name"],
            database=database,
        )
        done.append(migration)
    return done


def check_schema(client: Client, database: str, migrations: list[Migration] | None = None) -> None:
    """Raise ``SchemaError`` naming the first migration the database lacks."""
    missing = missing_migrations(client, database, migrations)
    if missing:
        raise_missing(missing)


def raise_missing(missing: list[Migration]) -> None:
    """Raise the ``SchemaError`` that names the first of ``missing``."""
    raise SchemaError(f"ClickHouse schema is missing migration {missing[0].name}: run `streamer migrate`")
