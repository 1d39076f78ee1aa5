"""The status report's shaping and caches, over a fake of the query service's reads (one module)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from streamer.errors import SinkTransientError
from streamer.query import completeness as cq
from streamer.query import sql
from streamer.query import status as status_module
from streamer.query.status import StatusReport, site_row, with_run
from streamer.settings import Settings

DB = "`streamer`"
NOW = 1_704_153_600_000  # 2024-01-02T00:00:00Z


class _Kafka:
    async def snapshot(self) -> dict[str, Any]:
        return {"reachable": True, "error": None, "total_lag": 7, "dlq_depth": 2}


class _Reads:
    """Answers each of the report's statements by its text; counts how often each was run."""

    def __init__(self, settings: Settings, *, runs_fail: bool = False) -> None:
        self.settings = settings
        self.kafka = _Kafka()
        self.asked: Counter[str] = Counter()
        self.runs_fail = runs_fail
        self.exact = {"a": 10, "b": 3}

    def _name(self, text: str) -> str:
        for name, query in {
            "version": sql.schema_version(DB),
            "runs": sql.sync_status(DB, NOW - 3_600_000),
            "stored": sql.rows_per_site(DB),
            "exact": sql.rows_per_site(DB, exact=True),
            "expected": cq.expected_per_hour(DB),
            "stored_hours": cq.stored_per_site(DB, NOW - cq.DAY_MS, NOW),
            "repairs": cq.repairs_per_site(DB, NOW - cq.DAY_MS),
        }.items():
            if query[0] == text:
                return name
        raise AssertionError(f"unexpected statement: {text}")

    async def rows(self, query: sql.Query) -> list[tuple[Any, ...]]:
        name = self._name(query[0])
        self.asked[name] += 1
        if name == "runs":
            if self.runs_fail:
                raise SinkTransientError("sync_runs: no such table")
            return [("a", "s1", NOW - 60_000, "ok", NOW - 30_000, 1, None, None, 42)]
        return {
            "stored": [("a", 12), ("b", 3)],
            "exact": list(self.exact.items()),
            "expected": [("a", 60, 1)],
            "stored_hours": [("a", 720)],
            "repairs": [("b", 1, 2, 5)],
        }[name]

    async def scalar(self, query: sql.Query) -> Any:
        self.asked[self._name(query[0])] += 1
        return 9

    async def sites(self) -> dict[str, Any]:
        self.asked["sites"] += 1
        return {"sites": [{"site": "a", "points": 1, "points_with_data": 1, "last_sample": NOW - 1}]}


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status_module, "now_ms", lambda: NOW)


async def test_status_shapes_each_site_from_its_runs_rows_and_completeness(base_settings: Settings) -> None:
    """A site's row joins its newest run (watermark and its age), exact and stored rows, the day's
    completeness and repairs; a site only in the repairs or the counts still gets a row."""
    reads = _Reads(base_settings)
    answer = await StatusReport(reads, DB).status()
    a, b = answer["sites"]
    assert (a["site"], a["points"], a["rows"], a["rows_stored"]) == ("a", 1, 10, 12)
    assert (a["watermark"], a["watermark_age_s"], a["samples_last_hour"]) == (NOW - 30_000, 30.0, 42)
    assert a["completeness_24h"] == cq.ratio(720, 24 * 60)
    assert (b["site"], b["rows"], b["last_sync_id"], b["repair_api_calls_24h"]) == ("b", 3, None, 2)
    assert answer["clickhouse"] | {"target": None} == {
        "reachable": True,
        "target": None,
        "schema_version": 9,
        "error": None,
        "rows": 13,
        "rows_stored": 15,
    }
    assert answer["kafka"]["total_lag"] == 7


async def test_answers_are_reused_within_their_cache_times(base_settings: Settings) -> None:
    """Two status calls within api_status_cache_s compute once; after it, the exact counts and the
    completeness are still reused (their own, longer caches) while the cheap parts are asked again."""
    reads = _Reads(base_settings.model_copy(update={"api_status_cache_s": 0.0}))
    report = StatusReport(reads, DB)
    await report.status()
    reads.exact = {"a": 11}
    second = await report.status()
    assert reads.asked["runs"] == 2 and reads.asked["stored"] == 2
    assert reads.asked["exact"] == 1 and reads.asked["repairs"] == 1
    assert second["sites"][0]["rows"] == 10  # the counts of the first call, cached

    cached = _Reads(base_settings.model_copy(update={"api_status_cache_s": 60.0}))
    report = StatusReport(cached, DB)
    first = await report.status()
    assert await report.status() is first
    assert cached.asked["runs"] == 1


async def test_unreadable_sync_runs_leave_the_rest_of_the_status(base_settings: Settings) -> None:
    """sync_runs unreadable (not migrated yet): the sites, counts and completeness are still answered."""
    answer = await StatusReport(_Reads(base_settings, runs_fail=True), DB).status()
    assert [s["site"] for s in answer["sites"]] == ["a", "b"]
    assert answer["sites"][0]["watermark"] is None and answer["sites"][0]["rows"] == 10


async def test_health_is_degraded_without_kafka_and_down_without_clickhouse(base_settings: Settings) -> None:
    """Health says ok, degraded (Kafka unreachable) or down (ClickHouse unreachable)."""

    class _NoKafka(_Kafka):
        async def snapshot(self) -> dict[str, Any]:
            return {"reachable": False, "error": "refused", "total_lag": None, "dlq_depth": None}

    class _NoClickHouse(_Reads):
        async def scalar(self, query: sql.Query) -> Any:
            raise SinkTransientError("connection refused")

    reads = _Reads(base_settings)
    assert (await StatusReport(reads, DB).health())["status"] == "ok"
    reads.kafka = _NoKafka()
    assert (await StatusReport(reads, DB).health())["status"] == "degraded"
    down = await StatusReport(_NoClickHouse(base_settings), DB).health()
    assert (down["status"], down["clickhouse"]["error"]) == ("down", "connection refused")


def test_a_run_without_an_ok_window_has_no_watermark() -> None:
    """A site whose recent runs all failed shows the failure and no watermark (not the failed end)."""
    row = site_row("a", None, 0)
    with_run(row, ("a", "s2", NOW, "failed", NOW - 5_000, 0, "HTTP 500", NOW - 1_000, 0), NOW)
    assert (row["watermark"], row["watermark_age_s"]) == (None, None)
    shown = (row["last_status"], row["last_error"], row["last_error_at"])
    assert shown == ("failed", "HTTP 500", NOW - 1_000)
