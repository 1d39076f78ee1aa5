"""Test-only fault hooks on the processor's web server (``settings.processor_fault_hooks``).

- ``POST /_faults/detach?table=timeseries_raw&seconds=10`` detaches a ClickHouse table now and attaches
  it again after N seconds: inserts fail for real with UNKNOWN_TABLE (an outage: transient).
- ``POST /_faults/reject?above=1000000`` adds a CHECK constraint to ``timeseries_raw`` whose evaluation
  fails with CANNOT_CONVERT_TYPE for any |value| >= above: ClickHouse refuses such rows for real (a
  permanent error; constraints are checked before anything is written). ``POST /_faults/clear`` drops
  it again: the "fix" after which a dead letter can be replayed.

They run INSIDE the processor process, on the same embedded engine the sink writes to: the embedded
ClickHouse admits one process per data directory, so this is the honest way to make the processor's
own inserts fail. Absent unless the setting is on (``create_app`` registers them only then); like every
route of that server they pass ``streamer.webguard`` (the token when one is set, a JSON body).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any

from streamer.processor.faust_seam import SeamApp, add_post_route
from streamer.settings import Settings
from streamer.sink.client import acquire_client, release_client

log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONSTRAINT = "fault_reject"
_pending: set[asyncio.Task[None]] = set()


def _command(settings: Settings, sql: str) -> None:
    client = acquire_client(settings)
    try:
        client.command(sql)
    finally:
        release_client(client)


async def detach_for(settings: Settings, table: str, seconds: float) -> None:
    """DETACH ``table`` now; ATTACH it again ``seconds`` later (in the background)."""
    if not _IDENT.match(table):
        raise ValueError(f"not a table name: {table!r}")
    name = f"`{settings.clickhouse_database}`.`{table}`"
    await asyncio.to_thread(_command, settings, f"DETACH TABLE {name}")
    log.warning("fault hook: detached %s for %.1fs", name, seconds)

    async def reattach() -> None:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(_command, settings, f"ATTACH TABLE {name}")
        log.warning("fault hook: attached %s again", name)

    task = asyncio.ensure_future(reattach())
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def reject_above(settings: Settings, limit: float) -> None:
    """Make ClickHouse refuse rows of ``timeseries_raw`` with |value| >= ``limit`` (permanently)."""
    table = f"`{settings.clickhouse_database}`.`timeseries_raw`"
    check = f"accurateCast(floor(abs(value) / {float(limit)!r}) * 1000, 'UInt8') = 0"
    await asyncio.to_thread(
        _command, settings, f"ALTER TABLE {table} ADD CONSTRAINT {_CONSTRAINT} CHECK {check}"
    )
    log.warning("fault hook: %s refuses |value| >= %s", table, limit)


async def clear_faults(settings: Settings) -> None:
    table = f"`{settings.clickhouse_database}`.`timeseries_raw`"
    await asyncio.to_thread(
        _command, settings, f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {_CONSTRAINT}"
    )
    log.warning("fault hook: faults cleared")


def add_fault_hooks(app: SeamApp, settings: Settings) -> None:
    """Register the fault routes on ``app``'s web server."""

    async def reject(query: Mapping[str, str]) -> tuple[dict[str, Any], int]:
        limit = float(query.get("above", "1000000"))
        await reject_above(settings, limit)
        return {"rejecting_above": limit}, 200

    async def clear(query: Mapping[str, str]) -> tuple[dict[str, Any], int]:
        await clear_faults(settings)
        return {"cleared": True}, 200

    async def detach(query: Mapping[str, str]) -> tuple[dict[str, Any], int]:
        table = query.get("table", "timeseries_raw")
        seconds = float(query.get("seconds", "10"))
        try:
            await detach_for(settings, table, seconds)
        except ValueError as exc:
            return {"error": str(exc)}, 400
        return {"detached": table, "seconds": seconds}, 200

    add_post_route(app, "/_faults/reject", reject)
    add_post_route(app, "/_faults/clear", clear)
    add_post_route(app, "/_faults/detach", detach)
