"""The one writer to ClickHouse. Nothing else in streamer inserts into it.

``Sink`` methods are synchronous and thread-safe: the async processor calls them through
``asyncio.to_thread``. The client is opened on first use, so an unreachable server surfaces as a
``SinkTransientError`` from the call (retry it) rather than from the constructor. Inserts are
synchronous (no fire-and-forget async inserts): when a method returns, the rows are stored.

Errors: ``SinkTransientError`` (wait and retry the same batch: nothing is lost) or
``SinkPermanentError`` (the rows themselves are refused: bisect, DLQ the poison rows); see
``streamer.sink.errors`` for the classification.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from clickhouse_connect.driver.client import Client

from streamer.errors import SinkPermanentError, SinkTransientError, StreamerError
from streamer.metrics import BATCH_ROWS, INSERT_SECONDS, ROWS_INSERTED
from streamer.models import SyncRun
from streamer.settings import Settings
from streamer.sink import migrations, native, rollups, tables
from streamer.sink.client import acquire_client, describe_target, release_client
from streamer.sink.errors import translate
from streamer.sink.rows import PointRow, point_columns, sync_run_columns

log = logging.getLogger(__name__)


def _insert_settings(token: str | None) -> dict[str, Any] | None:
    if not token:
        return None
    # With the token, a retried batch is dropped by timeseries_raw's dedup window. The view of
    # latest_values must still see it: if the first attempt failed inside the view after the raw
    # part was written, a retry that skipped it would lose those rows there. latest_values absorbs
    # a repeated block (ReplacingMergeTree by ts), so it may always receive it.
    # optimize_on_insert=0: ClickHouse would otherwise run each table's merge step (replace) over
    # every inserted block. The duplicates within a raw block collapse on merge and under FINAL like
    # those across batches: +10 % rows per CPU-second (bench/sink.py), same result.
    return {
        "insert_deduplication_token": token,
        "deduplicate_blocks_in_dependent_materialized_views": 1,
        "optimize_on_insert": 0,
    }


class Sink:
    """Writes samples, points and sync runs into the database of ``settings``."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._database = settings.clickhouse_database
        self._target = describe_target(settings)
        password = settings.clickhouse_password.get_secret_value()
        self._secrets = (password,) if password else ()
        self._client: Client | None = None
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"Sink({self._target})"

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- writes
    def insert_samples(
        self,
        sites: Sequence[str],
        points: Sequence[str],
        ts_ms: Sequence[int],
        values: Sequence[float],
        token: str,
    ) -> int:
        """Insert one batch of normalised samples as columns (epoch-ms timestamps), then recompute the
        hourly rollup rows of the points and hours it touched; returns the rows written.

        ``token``: see ``store_samples``. The recompute runs also when the insert was dropped as a
        retry: the attempt that stored the rows may have failed (or crashed) before its recompute. A
        failed recompute is transient whatever the error, since the rows themselves are stored: the
        caller retries the call, the insert is dropped by its token, and the recompute runs again.
        """
        n = len(ts_ms)
        if not len(sites) == len(points) == len(values) == n:
            raise SinkPermanentError(
                f"sample columns differ in length: sites={len(sites)} points={len(points)} "
                f"ts_ms={n} values={len(values)}"
            )
        stored = self.store_samples(native.runs_of(sites, points, ts_ms, values), token)
        if stored:
            self.recompute_rollups(rollups.touched_hours(sites, points, ts_ms))
        return stored

    def store_samples(self, runs: Sequence[native.Run], token: str) -> int:
        """Insert runs of normalised samples (a run: one site and point's times and values) into
        ``timeseries_raw`` only; returns the rows written.

        ``token`` must identify the batch's *content* (e.g. its source offsets): an insert whose token
        was seen in the last 1000 blocks is skipped, which makes retrying a failed insert harmless.
        A bisected half of a batch therefore needs its own token. The rollups are NOT recomputed:
        the caller owes ``recompute_rollups`` of the rows' keys (``rollups.touched_runs``) before it
        treats them as settled (the processor: before it acks their records, ``pending_acks``).
        """
        block, n = native.samples_block(runs)
        if n == 0:
            return 0
        client = self._get_client()
        started = time.perf_counter()
        try:
            client.raw_insert(
                tables.TIMESERIES_RAW, native.COLUMNS, block, settings=_insert_settings(token), fmt="Native"
            )
        except Exception as exc:
            raise translate(exc, f"insert of {n} rows into {tables.TIMESERIES_RAW}", self._secrets) from exc
        self._inserted(tables.TIMESERIES_RAW, n, time.perf_counter() - started)
        BATCH_ROWS.observe(n)
        return n

    def recompute_rollups(self, touched: rollups.Touched) -> None:
        """Rewrite the rollup_1h rows of the ``touched`` points and hours from raw FINAL."""
        if not touched.keys:
            return
        client = self._get_client()
        started = time.perf_counter()
        try:
            # The version is read before the recompute starts: see streamer.sink.rollups.
            version = int(str(client.command(rollups.VERSION_SQL)))
            client.command(
                rollups.recompute_sql(f"`{self._database}`", rollups.keys_filter(touched)),
                parameters=rollups.recompute_params(touched, version),
                settings=rollups.RECOMPUTE_SETTINGS,
            )
        except Exception as exc:
            what = f"rollup recompute of {touched.points} points x {touched.hours} hours"
            error = translate(exc, what, self._secrets)
            raise SinkTransientError(str(error)) from exc
        log.debug(
            "recomputed rollup hours of %d points in %.3fs",
            touched.points,
            time.perf_counter() - started,
        )

    def insert_points(self, rows: Sequence[PointRow]) -> int:
        """Insert point versions and tombstones (idempotent: ReplacingMergeTree by version)."""
        if not rows:
            return 0
        data = point_columns(rows)
        self._insert(tables.POINTS, data, tables.POINT_COLUMNS, tables.POINT_TYPES, len(rows))
        return len(rows)

    def insert_sync_runs(self, runs: Sequence[SyncRun]) -> int:
        """Insert producer window records (idempotent: ReplacingMergeTree by sync_id)."""
        if not runs:
            return 0
        data = sync_run_columns(runs)
        self._insert(tables.SYNC_RUNS, data, tables.SYNC_RUN_COLUMNS, tables.SYNC_RUN_TYPES, len(runs))
        return len(runs)

    # -- schema
    def migrate(self) -> list[migrations.Migration]:
        """Apply the missing migrations; returns those applied now."""
        client = self._get_client()
        cluster = self._settings.clickhouse_cluster or None
        try:
            return migrations.migrate(client, self._database, cluster=cluster)
        except StreamerError:
            raise
        except Exception as exc:
            raise translate(exc, f"migration of {self._target}", self._secrets) from exc

    def check_schema(self) -> None:
        """Raise ``SchemaError`` naming the first missing migration (``SinkTransientError`` if down)."""
        client = self._get_client()
        try:
            missing = migrations.missing_migrations(client, self._database)
        except StreamerError:
            raise
        except Exception as exc:
            raise translate(exc, f"schema check of {self._target}", self._secrets) from exc
        if missing:
            migrations.raise_missing(missing)

    def close(self) -> None:
        """Release the client; later calls raise."""
        with self._lock:
            client, self._client, self._closed = self._client, None, True
        if client is not None:
            release_client(client)

    # -- internals
    def _get_client(self) -> Client:
        with self._lock:
            if self._closed:
                raise RuntimeError("Sink is closed")
            if self._client is None:
                self._client = acquire_client(self._settings)
            return self._client

    def _insert(
        self,
        table: str,
        data: Sequence[Sequence[Any]],
        columns: Sequence[str],
        types: Sequence[str],
        rows: int,
    ) -> None:
        client = self._get_client()
        started = time.perf_counter()
        # clickhouse-connect's InsertContext refers to itself (a bound method kept as an attribute), so
        # only the cyclic GC frees it, and with it the batch's columns: an outer list of our own,
        # emptied afterwards, lets the columns go at once. Collections are rare in the processor (it frees
        # its decoded pairs at once), and uncollected batches raised its peak RSS from 980 to 1,440 MB.
        held = list(data)
        try:
            client.insert(
                table,
                held,
                column_names=columns,
                column_type_names=types,
                column_oriented=True,
            )
        except Exception as exc:
            raise translate(exc, f"insert of {rows} rows into {table}", self._secrets) from exc
        finally:
            held.clear()
        self._inserted(table, rows, time.perf_counter() - started)

    def _inserted(self, table: str, rows: int, elapsed: float) -> None:
        INSERT_SECONDS.observe(elapsed)
        ROWS_INSERTED.labels(table=table).inc(rows)
        log.debug("inserted %d rows into %s in %.3fs", rows, table, elapsed)
