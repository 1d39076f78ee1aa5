"""Unit tests of the repair schedule and budget: each hour is due once per age, oldest age kept."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from streamer.errors import StreamerError
from streamer.models import SyncRun, SyncState
from streamer.producer.repair import HOUR_MS, Budget, RepairLoop, due_hours
from streamer.producer.windows import Window
from streamer.query.params import TimeRange
from streamer.settings import Settings

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z, an hour boundary
AGES = [3600, 21600]


def test_an_hour_is_due_once_per_age_however_the_passes_fall() -> None:
    """Passes every 7 minutes for 9 hours: each hour is due exactly once per age it reaches meanwhile."""
    seen: list[tuple[int, int]] = []
    last = T0
    for now in range(T0 + 7 * 60_000, T0 + 9 * HOUR_MS, 7 * 60_000):
        seen += sorted(due_hours(last, now, AGES).items())
        last = now
    one_hour = [h for h, age in seen if age == 3600]
    six_hours = [h for h, age in seen if age == 21600]
    # The last pass is before T0 + 9 h: hours ending by T0 + 8 h have turned 1 h, by T0 + 3 h 6 h.
    assert one_hour == [T0 + i * HOUR_MS for i in range(-1, 7)]
    assert six_hours == [T0 + i * HOUR_MS for i in range(-6, 2)]
    assert len(seen) == len(set(seen))


def test_hours_reaching_two_ages_in_one_pass_keep_the_older() -> None:
    """A pass after a long pause finds an hour due at both ages: it is judged once, at the older one."""
    due = due_hours(T0, T0 + 8 * HOUR_MS, AGES)
    assert due[T0] == 21600 and due[T0 + HOUR_MS] == 21600
    assert due[T0 + 6 * HOUR_MS] == 3600
    assert T0 + 7 * HOUR_MS not in due  # ends at 8 h: aged 0 s
    assert due_hours(T0, T0, AGES) == {}


def test_budget_counts_requests_of_the_last_hour() -> None:
    """Requests spent more than an hour ago are forgotten; a cost that would pass the limit is refused."""
    budget = Budget(limit=10)
    budget.spend(T0, 6)
    assert budget.allows(T0 + 1, 4) and not budget.allows(T0 + 1, 5)
    budget.spend(T0 + 30 * 60_000, 4)
    assert budget.used(T0 + HOUR_MS - 1) == 10
    assert budget.used(T0 + HOUR_MS) == 4
    assert budget.allows(T0 + HOUR_MS, 6)


# ------------------------------------------------------------------ the loop, with its edges faked
class FakeSource:
    """Completeness answers from a dict hour → stored, for every asked range; counts the reads."""

    def __init__(self, stored: dict[int, int], expected: int = 100, read_from: int | None = T0) -> None:
        self.stored, self.expected, self.read_from, self.reads = stored, expected, read_from, 0
        self.unjudged: dict[int, int] = {}  # hour → samples of points without a collect_interval
        self.fail = False

    async def completeness(self, site: str, time_range: TimeRange) -> dict[str, Any]:
        self.reads += 1
        if self.fail:
            raise StreamerError("query API down")
        hours = [
            {"hour": h, "stored": self.stored.get(h, 0),
             "samples": self.stored.get(h, 0) + self.unjudged.get(h, 0),
             "expected": self.expected, "completeness": self.stored.get(h, 0) / self.expected}
            for h in range(time_range.start_ms, time_range.end_ms, HOUR_MS)
        ]  # fmt: skip
        total = sum(h["stored"] for h in hours)
        return {"hours": hours, "read_from": self.read_from, "completeness": total / (100 * len(hours))}


class FakeCtx:
    """What the loop touches of a ProducerContext: clock, settings, states, API stats, sync_runs."""

    def __init__(self, settings: Settings, watermark: int) -> None:
        self.settings = settings
        self.now = T0
        self.clock = lambda: self.now
        self.states = {"s": SyncState(site="s", watermark_ms=watermark, updated_at_ms=T0)}
        self.calls = 0
        self.client = self
        self.sent: list[SyncRun] = []

    def site_stats(self, site: str) -> Any:
        return self

    @property
    def api_calls(self) -> int:
        return self.calls

    async def send_and_wait(self, topic: str, key: bytes, value: bytes) -> None:
        self.sent.append(SyncRun.model_validate_json(value))


def _loop(
    monkeypatch: pytest.MonkeyPatch, source: FakeSource, **settings: Any
) -> tuple[RepairLoop, list[Window]]:
    fetched: list[Window] = []

    async def fake_sync_window(ctx: Any, site: str, window: Window, sync_id: str, **_: Any) -> SyncRun:
        fetched.append(window)
        ctx.calls += 4
        return SyncRun(
            sync_id=sync_id, site=site, window_start_ms=window.start_ms, window_end_ms=window.end_ms,
            kind=window.kind, started_at_ms=ctx.now, duration_ms=1, api_calls=4, pages=4,
            samples_fetched=10, records_published=1, samples_published=10, errors=0, status="ok",
        )  # fmt: skip

    monkeypatch.setattr("streamer.producer.repair.sync_window", fake_sync_window)
    values = {"repair_revisit_s": [3600], "repair_budget_per_hour": 10, **settings}
    return RepairLoop(Settings(**values), source), fetched


async def test_the_loop_refetches_incomplete_hours_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Complete and never-read hours are left alone; incomplete ones are fetched as repair windows
    while the budget lasts, the rest wait; what a repair recovered is re-recorded in sync_runs."""
    source = FakeSource({T0 + h * HOUR_MS: n for h, n in enumerate([100, 10, 50, 99])}, read_from=T0)
    loop, fetched = _loop(monkeypatch, source)
    ctx = FakeCtx(loop._settings, watermark=T0 + 10 * HOUR_MS)
    await loop.visit(ctx, "s")  # type: ignore[arg-type]
    ctx.now = T0 + 6 * HOUR_MS  # hours -1..4 reach 1 h of age; -1 was never read, 0 is complete
    await loop.visit(ctx, "s")  # type: ignore[arg-type]
    assert fetched == [
        Window(T0 + HOUR_MS, T0 + 2 * HOUR_MS, "repair"),
        Window(T0 + 2 * HOUR_MS, T0 + 3 * HOUR_MS, "repair"),
    ]
    assert sorted(loop.site("s", ctx.now).pending) == [
        T0 + 3 * HOUR_MS,
        T0 + 4 * HOUR_MS,
    ]  # budget: 8 of 10 spent
    gauge = REGISTRY.get_sample_value("streamer_completeness_ratio", {"site": "s"})
    assert gauge == (0 + 100 + 10 + 50 + 99 + 0) / 600  # the hours it read, no query of its own
    source.stored[T0 + HOUR_MS] = 100  # what the first repair brought back, stored since
    ctx.now += HOUR_MS  # the spending has aged out
    await loop.visit(ctx, "s")  # type: ignore[arg-type]
    assert [(r.window_start_ms, r.samples_recovered) for r in ctx.sent] == [
        (T0 + HOUR_MS, 90),
        (T0 + 2 * HOUR_MS, 0),
    ]
    assert fetched[2:] == [
        Window(T0 + 3 * HOUR_MS, T0 + 4 * HOUR_MS, "repair"),
        Window(T0 + 4 * HOUR_MS, T0 + 5 * HOUR_MS, "repair"),
    ]


async def test_recovered_counts_every_sample_that_came_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A repair's samples_recovered counts what came back, points without a collect_interval too
    (not judged by completeness), and not what was stored before it."""
    source = FakeSource({T0: 0, T0 + HOUR_MS: 10}, read_from=T0)
    source.unjudged = {T0 + HOUR_MS: 20}  # already there before the repair
    loop, fetched = _loop(monkeypatch, source)
    ctx = FakeCtx(loop._settings, watermark=T0 + 10 * HOUR_MS)
    await loop.visit(ctx, "s")  # type: ignore[arg-type]
    ctx.now = T0 + 3 * HOUR_MS
    await loop.visit(ctx, "s")  # type: ignore[arg-type]
    assert [w.start_ms for w in fetched] == [T0, T0 + HOUR_MS]
    source.stored = {T0: 100, T0 + HOUR_MS: 100}
    source.unjudged = {T0: 20, T0 + HOUR_MS: 20}
    ctx.now += 60_000
    await loop.visit(ctx, "s")  # type: ignore[arg-type]
    assert [(r.window_start_ms, r.samples_recovered) for r in ctx.sent] == [(T0, 120), (T0 + HOUR_MS, 90)]


async def test_an_unreadable_store_keeps_hours_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    """While completeness cannot be read nothing is fetched and nothing is forgotten."""
    source = FakeSource({})
    loop, fetched = _loop(monkeypatch, source, repair_budget_per_hour=100)
    ctx = FakeCtx(loop._settings, watermark=T0 + 10 * HOUR_MS)
    await loop.visit(ctx, "s")  # type: ignore[arg-type]
    source.fail = True
    ctx.now = T0 + 3 * HOUR_MS
    await loop.visit(ctx, "s")  # type: ignore[arg-type]
    assert fetched == [] and sorted(loop.site("s", ctx.now).pending) == [T0 - HOUR_MS, T0, T0 + HOUR_MS]
    source.fail = False
    ctx.now += 60_000
    await loop.visit(ctx, "s")  # type: ignore[arg-type]
    assert [w.start_ms for w in fetched] == [T0, T0 + HOUR_MS]  # T0 - 1 h: before read_from


async def test_a_site_this_worker_no_longer_owns_is_not_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    """With producer groups, an incomplete hour of a site handed over meanwhile is left to its owner."""
    source = FakeSource({})
    loop, fetched = _loop(monkeypatch, source, repair_budget_per_hour=100)
    ctx = FakeCtx(loop._settings, watermark=T0 + 10 * HOUR_MS)
    await loop.visit(ctx, "s", lambda site: False)  # type: ignore[arg-type]
    ctx.now = T0 + 3 * HOUR_MS
    await loop.visit(ctx, "s", lambda site: False)  # type: ignore[arg-type]
    assert fetched == []
    await loop.visit(ctx, "s", lambda site: True)  # type: ignore[arg-type]
    assert [w.start_ms for w in fetched] == [T0, T0 + HOUR_MS]
