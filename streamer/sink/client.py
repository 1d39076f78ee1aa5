"""ClickHouse clients for both targets, chosen by ``settings.resolved_clickhouse_url``.

- ``chdb:///path``: the embedded engine through clickhouse-connect's chdb interface. The engine
  admits one data directory per process (and one process per directory), so every user in the
  process shares one client per (path, database), handed out with a reference count. The client
  serialises calls on its engine handle with its own lock, which makes it safe to call from
  ``asyncio.to_thread`` workers. chdb comes with the ``embedded`` extra (``streamer[embedded]``);
  without it a chdb:// URL fails with a ``ConfigError`` saying what to install.
- ``http(s)://host:port``: a ClickHouse server; each lease is its own client (thread-safe: no HTTP
  session id, so concurrent queries are allowed).

The database is created when missing. Errors are translated into the streamer error tree here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from streamer.errors import ConfigError, SinkTransientError
from streamer.settings import Settings
from streamer.sink import params
from streamer.sink.errors import translate


@dataclass
class _Lease:
    client: Client
    refs: int


_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The embedded engine's caches, sized for an engine sharing its process and RAM with the processor
# (or the query service): ClickHouse's defaults (5 GiB each for marks, secondary-index marks and
# primary indexes) assume a dedicated server, and the processor's query API reads through this engine,
# so they grew with every table read. Server settings: fixed when the engine starts (the first client
# of a process opens it, every later handle shares it). A ClickHouse server takes these from its own
# configuration, so the HTTP path sends nothing for them; the session settings both paths send are
# the sink's and the query service's own, the same SQL on both (tests/integration/sink/test_server_sql.py).
EMBEDDED_ENGINE_OPTIONS: dict[str, str] = {
    "mark_cache_size": str(64 << 20),
    "index_mark_cache_size": str(16 << 20),
    "primary_index_cache_size": str(16 << 20),
    "query_condition_cache_size": str(16 << 20),
    "compiled_expression_cache_size": str(16 << 20),
}
# MergeTree settings of the embedded engine, in a config file it reads at start (chdb passes no
# merge_tree.* option from its connection string; a server has its own config). Outdated parts (what
# merges and inserts leave behind) are removed by a cleanup pass that sleeps up to 300 s when it found
# little, then removes over a hundred at once, and above concurrent_part_removal_threshold (100) it
# hands them to a pool of 128 threads, kept idle in the process for good: the portfolio's processors
# gained ~130 threads and ~30 MB of RSS in one step minutes into their steady state (bench/portfolio.py).
# Here a pass every 30-40 s, removing its few dozen local directories on its own thread.
EMBEDDED_MERGE_TREE_SETTINGS: dict[str, str] = {
    "concurrent_part_removal_threshold": "1000000",
    "max_cleanup_delay_period": "30",
}
ENGINE_CONFIG_FILE = "streamer-engine.xml"  # in the engine's directory, rewritten at every start
_shared: dict[tuple[str, str], _Lease] = {}
_shared_lock = threading.Lock()


def acquire_client(settings: Settings) -> Client:
    """A client bound to ``settings.clickhouse_database`` (created if missing); pair with release."""
    _check_names(settings)
    params.check_binding()
    url = settings.resolved_clickhouse_url
    if not url.startswith("chdb://"):
        return _http_client(settings)
    key = (_chdb_path(url), settings.clickhouse_database)
    with _shared_lock:
        lease = _shared.get(key)
        if lease is None:
            lease = _Lease(_chdb_client(*key), 0)
            _shared[key] = lease
        lease.refs += 1
        return lease.client


def release_client(client: Client) -> None:
    """Give back a client from ``acquire_client``; the last holder of a shared client closes it."""
    with _shared_lock:
        for key, lease in _shared.items():
            if lease.client is client:
                lease.refs -= 1
                if lease.refs > 0:
                    return
                del _shared[key]
                break
    client.close()


@contextmanager
def clickhouse_client(settings: Settings) -> Iterator[Client]:
    """``acquire_client`` as a context manager."""
    client = acquire_client(settings)
    try:
        yield client
    finally:
        release_client(client)


def describe_target(settings: Settings) -> str:
    """The target for messages and logs: scheme, host or path, database; never credentials."""
    url = settings.resolved_clickhouse_url
    if url.startswith("chdb://"):
        return f"chdb://{_chdb_path(url)} database {settings.clickhouse_database}"
    parsed = urlparse(url)
    host = parsed.hostname or "?"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port} database {settings.clickhouse_database}"


def _check_names(settings: Settings) -> None:
    # Both names are spliced into DDL: only plain identifiers, never anything needing quoting.
    names = {"DATABASE": settings.clickhouse_database, "CLUSTER": settings.clickhouse_cluster or "x"}
    for name, value in names.items():
        if not _IDENT_RE.match(value):
            raise ConfigError(f"STREAMER_CLICKHOUSE_{name}: {value!r} is not a plain identifier")


def _chdb_path(url: str) -> str:
    path = urlparse(url).path
    if not path or path == "/":
        raise ConfigError(f"STREAMER_CLICKHOUSE_URL: {url!r} names no directory (want chdb:///path)")
    return path


def require_embedded_engine(settings: Settings) -> None:
    """Raise ``ConfigError`` now if ``settings`` want the embedded engine and it is not installed."""
    if settings.is_embedded_clickhouse:
        _require_embedded_engine()


def _require_embedded_engine() -> None:
    """The embedded engine is the ``embedded`` extra: without it, one line saying what to install."""
    try:
        import chdb  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "the embedded ClickHouse engine (chdb://, the default without STREAMER_CLICKHOUSE_URL) is "
            "not installed: pip install 'streamer[embedded]', or set STREAMER_CLICKHOUSE_URL to a server"
        ) from exc


def engine_config(path: str) -> Path:
    """Write the embedded engine's config file (``EMBEDDED_MERGE_TREE_SETTINGS``) under ``path``."""
    settings = "".join(f"<{k}>{v}</{k}>" for k, v in EMBEDDED_MERGE_TREE_SETTINGS.items())
    config = Path(path) / ENGINE_CONFIG_FILE
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"<clickhouse><merge_tree>{settings}</merge_tree></clickhouse>\n")
    return config


def _chdb_client(path: str, database: str) -> Client:
    _require_embedded_engine()
    options = {**EMBEDDED_ENGINE_OPTIONS, "config-file": str(engine_config(path))}
    try:
        client = clickhouse_connect.get_client(dsn=f"chdb://{path}", chdb_options=options)
    except Exception as exc:
        if "already initialized with path" in str(exc):
            # Within one process the engine cannot switch directories: a setup error, not an outage.
            raise ConfigError(
                f"the embedded ClickHouse engine is already open on another path than {path}"
            ) from exc
        # Most often another process holds the directory; it may be on its way out.
        raise SinkTransientError(
            f"cannot open the embedded ClickHouse at {path} (is another streamer process using it?)"
        ) from exc
    try:
        _use_database(client, database)
    except Exception as exc:
        client.close()
        raise translate(exc, f"opening database {database} at chdb://{path}") from exc
    return client


def _http_client(settings: Settings) -> Client:
    parsed = urlparse(settings.resolved_clickhouse_url)
    action = f"connect to {describe_target(settings)}"
    try:
        client = clickhouse_connect.get_client(
            host=parsed.hostname or "localhost",
            port=parsed.port,
            interface=parsed.scheme,
            username=settings.clickhouse_user,
            password=settings.clickhouse_password.get_secret_value(),
            autogenerate_session_id=False,
        )
    except Exception as exc:
        raise translate(exc, action, secrets=_secrets(settings)) from exc
    try:
        _use_database(client, settings.clickhouse_database, settings.clickhouse_cluster)
    except Exception as exc:
        client.close()
        raise translate(exc, action, secrets=_secrets(settings)) from exc
    return client


def _use_database(client: Client, database: str, cluster: str = "") -> None:
    exists = client.command(
        "SELECT count() FROM system.databases WHERE name = {db:String}", parameters={"db": database}
    )
    if not int(str(exists)):
        on_cluster = f" ON CLUSTER `{cluster}`" if cluster else ""
        client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`{on_cluster}")
    client.database = database


def _secrets(settings: Settings) -> tuple[str, ...]:
    password = settings.clickhouse_password.get_secret_value()
    return (password,) if password else ()
