"""The query service's own ClickHouse session: read-only, with the API's limits, and on the embedded
engine a handle of its own (chdb runs separate handles on one directory concurrently), so its reads
never wait on, or hold, the lock of the sink's handle."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from streamer.errors import SinkTransientError
from streamer.settings import Settings
from streamer.sink.client import acquire_client, release_client
from streamer.sink.errors import translate


def own_settings(settings: Settings) -> dict[str, Any]:
    """Limits of the service's own queries; sorts and groupings spill to disk before the memory cap."""
    memory = settings.api_query_max_memory_bytes
    return {
        "max_execution_time": settings.api_query_max_execution_s,
        "max_memory_usage": memory,
        "max_threads": settings.api_sql_max_threads,
        "max_bytes_before_external_sort": memory // 2,
        "max_bytes_before_external_group_by": memory // 2,
        "readonly": 1,
    }


def own_client(settings: Settings) -> Client:
    """A client for the service alone: embedded, its own engine handle (the engine runs handles
    concurrently); server, its own lease. Either way with the limits as session settings."""
    url = settings.resolved_clickhouse_url
    if not url.startswith("chdb://"):
        client = acquire_client(settings)
        for key, value in own_settings(settings).items():
            client.set_client_setting(key, value)
        return client
    # The sink's factory creates the database when missing; held until the own handle is open, so
    # the engine is not shut down and restarted in between.
    shared = acquire_client(settings)
    try:
        return clickhouse_connect.get_client(
            dsn=f"chdb://{urlparse(url).path}",
            database=settings.clickhouse_database,
            settings=own_settings(settings),
        )
    except Exception as exc:
        raise SinkTransientError(str(translate(exc, "open a read session"))) from exc
    finally:
        release_client(shared)
