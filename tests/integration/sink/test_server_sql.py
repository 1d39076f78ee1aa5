"""The server path sends ClickHouse the SQL and settings the embedded engine runs in every other test.

No ClickHouse server runs here. The same workload (migrations, the sink's inserts, every query-service
question; workload.py) runs twice in child processes: on the embedded engine, recording each call the
client hands the engine, and over HTTP through clickhouse-connect's HTTP client against chdb_http.py, a
stand-in server that records each request and runs it on the embedded engine (ClickHouse's own code).
The two records and the two sets of answers must agree, and every setting the HTTP path sends must be
a setting of the engine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from streamer.query.readonly import session_settings
from streamer.settings import load_settings
from tests.integration.sink.chdb_http import INTERFACE_PARAMS

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
_FORMAT = re.compile(r"\s*FORMAT\s+\w+\s*$")
# Sent by clickhouse-connect's HTTP transport on every request; the HTTP handler's own business.
HTTP_HANDLER_SETTINGS = {
    "cancel_http_readonly_queries_on_client_close",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
}
# Passed to the embedded engine's handle by the client, but transport metadata, never settings.
ENGINE_TRANSPORT = {"client_protocol_version", "query_id"}
CLOCK_PARAM = "param_version"  # streamer.sink.rollups: a reading of the server's clock
SQL_ENDPOINT_STATEMENT = "SELECT site, count() FROM timeseries_raw FINAL GROUP BY site ORDER BY site"
SQL_ENDPOINT_CANONICAL = SQL_ENDPOINT_STATEMENT + " ASC"


@dataclass
class Run:
    calls: list[dict[str, Any]]  # statement, params, settings, data
    session: dict[str, str]  # settings the client set on the engine handle (embedded only)
    answers: dict[str, Any]


@dataclass
class Runs:
    embedded: Run
    http: Run
    engine_settings: set[str]  # of the settings the HTTP path sent, those in system.settings (in effect)
    table_settings: set[str]  # named in the migrations' SETTINGS / MODIFY SETTING clauses
    merge_tree_settings: set[str]  # of those, the ones in system.merge_tree_settings


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _workload(url: str, data_dir: Path, log: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(HERE / "workload.py"), url, str(data_dir), str(log)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers: dict[str, Any] = json.loads(done.stdout)
    return answers


def _read(log: Path, answers: dict[str, Any]) -> Run:
    calls, session = [], {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if "set" in entry:
            session[entry["set"][0]] = entry["set"][1]
        else:
            calls.append(entry)
    return Run(calls, session, answers)


def _names(url: str, table: str, names: set[str]) -> set[str]:
    """Of ``names``, those the engine has as production settings that still take effect (an obsolete
    setting is accepted and ignored; an experimental one may change or go)."""
    quoted = ",".join(f"'{n}'" for n in sorted(names))
    sql = (
        f"SELECT name FROM system.{table} WHERE name IN ({quoted})"
        " AND NOT is_obsolete AND tier = 'Production' FORMAT JSONEachRow"
    )
    response = httpx.post(url, content=sql, timeout=30)
    response.raise_for_status()
    return {json.loads(line)["name"] for line in response.text.splitlines()}


def _start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file = tmp / "port"
    server = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "chdb_http.py"),
            str(tmp / "server"),
            str(port_file),
            str(tmp / "http.log"),
        ],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "server.err").open("wb"),
    )
    deadline = time.monotonic() + 60
    while not port_file.exists():
        assert server.poll() is None, (tmp / "server.err").read_text()
        assert time.monotonic() < deadline, "the stand-in server did not start"
        time.sleep(0.1)
    return server, f"http://127.0.0.1:{port_file.read_text()}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """The workload on both paths, once for the module."""
    tmp = tmp_path_factory.mktemp("server_sql")
    embedded = _workload(f"chdb://{tmp / 'embedded'}", tmp / "embedded-data", tmp / "embedded.log")
    server, url = _start_server(tmp)
    try:
        http = _read(tmp / "http.log", _workload(url, tmp / "http-data", tmp / "unused.log"))
        sent = {name for call in http.calls for name in call["settings"]}
        statements = " ".join(call["statement"] for call in http.calls)
        table_settings = set(re.findall(r"(?:MODIFY SETTING|SETTINGS)\s+(\w+)\s*=", statements))
        yield Runs(
            _read(tmp / "embedded.log", embedded),
            http,
            _names(url, "settings", sent),
            table_settings,
            _names(url, "merge_tree_settings", table_settings),
        )
    finally:
        server.terminate()
        server.wait(30)


def _statements(run: Run) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """Distinct (statement, bound parameters): the client's FORMAT suffix and insert data left out; the
    rollup recompute's version is the server's clock when it ran, so only its form is compared."""
    return {(_FORMAT.sub("", c["statement"]).strip(), _params(c["params"])) for c in run.calls}


def _params(params: dict[str, str]) -> tuple[tuple[str, str], ...]:
    clock = {k: "<epoch ns>" for k, v in params.items() if k == CLOCK_PARAM and v.isdigit() and len(v) == 19}
    return tuple(sorted((params | clock).items()))


def test_http_path_sends_the_statements_the_embedded_engine_runs(runs: Runs) -> None:
    """Every statement and bound parameter the HTTP path sent is one the embedded engine ran, and the
    other way round (migrations' DDL, the sink's inserts, the query service's reads), and both paths
    gave the same answers."""
    assert _statements(runs.http) == _statements(runs.embedded)
    assert len(runs.http.calls) > 60
    statements = {s for s, _ in _statements(runs.http)}
    for needle in (
        "CREATE TABLE IF NOT EXISTS `streamer`.timeseries_raw",
        "MODIFY SETTING merge_selector_base",
        "INSERT INTO `streamer`.rollup_1h (site, point, bucket, count, sum, min, max, computed_at)",
    ):
        assert any(needle in s for s in statements), needle
    inserts = {
        s for s in statements if s.startswith("INSERT INTO timeseries_raw (`site`, `point`, `ts`, `value`)")
    }
    assert inserts, "the sink's sample inserts are missing"
    assert runs.http.answers == runs.embedded.answers
    assert runs.http.answers["samples raw"]["row_count"] > 0


def test_settings_agree_between_paths_and_exist_in_the_engine(runs: Runs) -> None:
    """The settings sent with the statements are the same on both paths (the insert settings per call,
    the SQL endpoint's limits per request over HTTP and on the session embedded), every setting name the
    HTTP path sends is in the engine's system.settings, and every table setting of the migrations in
    system.merge_tree_settings, none of them obsolete or experimental."""
    http_sent = {name for call in runs.http.calls for name in call["settings"]}
    embedded_sent = {name for call in runs.embedded.calls for name in call["settings"]} - ENGINE_TRANSPORT
    assert http_sent - HTTP_HANDLER_SETTINGS == embedded_sent | set(runs.embedded.session)
    assert not http_sent & INTERFACE_PARAMS
    assert http_sent <= runs.engine_settings, http_sent - runs.engine_settings
    assert runs.table_settings == {"merge_selector_base", "non_replicated_deduplication_window"}
    assert runs.table_settings <= runs.merge_tree_settings
    for path in (runs.http, runs.embedded):
        tokens = {c["settings"].get("insert_deduplication_token") for c in path.calls} - {None}
        assert tokens == {"s1/temp", "s1/fan", "s1/gappy", "s2/other", "replay"}


def test_sql_endpoint_limits_reach_the_server_with_the_statement(runs: Runs) -> None:
    """Over HTTP the caller-SQL limits and readonly=1 travel with the request itself (no session), and
    they are exactly the limits the embedded path sets on its read-only handle."""
    limits = {k: str(v) for k, v in session_settings(load_settings()).items()}
    # What runs is the engine's canonical text of the statement the guard judged (query/readonly.py).
    (call,) = [
        c for c in runs.http.calls if _FORMAT.sub("", c["statement"]).strip() == SQL_ENDPOINT_CANONICAL
    ]
    assert {k: call["settings"][k] for k in limits} == limits
    assert {k: runs.embedded.session[k] for k in limits} == limits
    # The query service reads on read-only sessions of its own too; the sink's writes never carry it.
    writes = ("INSERT", "CREATE", "ALTER", "DROP", "RENAME", "OPTIMIZE", "TRUNCATE")
    leaked = [
        c
        for c in runs.http.calls
        if "readonly" in c["settings"] and (c["data"] or c["statement"].lstrip().upper().startswith(writes))
    ]
    assert not leaked, "readonly leaked onto the writer's requests"
    assert any("readonly" not in c["settings"] and c["data"] for c in runs.http.calls)
