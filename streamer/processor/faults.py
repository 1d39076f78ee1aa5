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
from typing import Any

import faust
from faust.web import Request, Response, View

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


def add_fault_hooks(app: faust.App, settings: Settings) -> None:
    """Register the fault routes on ``app``'s web server."""

    @app.page("/_faults/reject")
    class Reject(View):
        async def post(self, request: Request, **kwargs: Any) -> Response:
            limit = float(request.query.get("above", "1000000"))
            await reject_above(settings, limit)
            return self.json({"rejecting_above": limit})

    @app.page("/_faults/clear")
    class Clear(View):
        async def post(self, request: Request, **kwargs: Any) -> Response:
            await clear_faults(settings)
            return self.json({"cleared": True})

    @app.page("/_faults/detach")
    class Detach(View):
        async def post(self, request: Request, **kwargs: Any) -> Response:
            table = request.query.get("table", "timeseries_raw")
            seconds = float(request.query.get("seconds", "10"))
            try:
                await detach_for(settings, table, seconds)
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            return self.json({"detached": table, "seconds": seconds})
