"""Sync runs: valid records inserted, invalid ones dead-lettered, every event acked after both."""

from __future__ import annotations

from typing import Any

from streamer.models import SyncRun
from streamer.processor.batch_items import Item
from streamer.processor.dlq import DlqWriter
from streamer.processor.sync_runs import SyncRunsPipeline
from streamer.settings import Settings
from tests.unit.processor.test_pipeline import FakeProducer


def run_value(sync_id: str) -> bytes:
    run = SyncRun(
        sync_id=sync_id, site="s", window_start_ms=0, window_end_ms=1, kind="incremental", started_at_ms=0,
        duration_ms=1, api_calls=1, pages=1, samples_fetched=1, records_published=1, samples_published=1,
        errors=0, status="ok",
    )  # fmt: skip
    return run.model_dump_json().encode()


class RunsSink:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.runs: list[SyncRun] = []

    def insert_sync_runs(self, runs: list[SyncRun]) -> int:
        self.runs += runs
        self.log.append(f"insert:{len(runs)}")
        return len(runs)


async def test_sync_runs_are_inserted_or_dead_lettered_then_acked(base_settings: Settings) -> None:
    """Two valid runs are inserted, a malformed one goes to the DLQ (stage decode), all acked last."""
    log: list[str] = []
    sink, producer = RunsSink(log), FakeProducer(log)

    async def ack(handle: Any) -> None:
        log.append(f"ack:{handle}")

    pipeline = SyncRunsPipeline(base_settings, sink, DlqWriter(base_settings, producer=producer), ack)
    values = [run_value("a"), b'{"sync_id": "b"}', run_value("c")]
    items = [Item(i, "t.sync_runs", 0, i, b"s", v, {}) for i, v in enumerate(values)]
    assert await pipeline.handle(items) == 2
    assert [r.sync_id for r in sink.runs] == ["a", "c"]
    (headers,) = producer.sent_headers()
    assert headers["stage"] == "decode" and headers["source_offset"] == "1"
    assert log[-3:] == ["ack:0", "ack:1", "ack:2"]
