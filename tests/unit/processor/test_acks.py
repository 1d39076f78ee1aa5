"""Commits after faust's own skip-acks: only offsets the pipeline released become committable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import TP, ConsumerMessage

from streamer.processor.app import create_app
from streamer.processor.faust_seam import SeamConsumer, ack_for, delivery_of
from streamer.processor.port import Delivery
from tests.isolation import isolated_settings

PREFIX = "acks"


@pytest.fixture
def app(tmp_path: Path) -> Any:
    """A real processor faust app whose (real, unstarted) consumer keeps faust's ack bookkeeping."""
    settings = isolated_settings(PREFIX, tmp_path)
    faust_app = create_app(settings, sink_factory=lambda: None, query_api=False).app
    # faust's private set: the topic acks as once its agent has started
    faust_app.topics._acking_topics.add(settings.topic_samples)  # type: ignore[attr-defined]
    faust_app.consumer_generation_id = 3
    return faust_app


def _message(app: Any, offset: int, generation: int | None = None) -> ConsumerMessage:
    tp = TP(f"{PREFIX}.samples", 0)
    return ConsumerMessage(
        topic=tp.topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        headers=[],
        key=b"k",
        value=b"v",
        checksum=None,
        tp=tp,
        generation_id=app.consumer_generation_id if generation is None else generation,
    )


async def test_faust_alone_commits_past_an_unprocessed_offset(app: Any, monkeypatch: Any) -> None:
    """The defect guarded against: committed 5, 5 in flight, 6 skip-acked by faust -> faust commits 7."""
    monkeypatch.setattr(SeamConsumer, "_new_offset", faust_aiokafka.Consumer._new_offset)  # faust alone
    consumer = app.consumer
    tp = _message(app, 0).tp
    consumer._committed_offset[tp] = 5
    _message(app, 6).ack(consumer)  # faust's stream loop acking a skipped event
    assert consumer._filter_committable_offsets([tp]) == {tp: 7}


async def test_skip_acked_offset_is_not_committed_ahead_of_the_pipeline(app: Any) -> None:
    """Same state with the gate: nothing is committed until 5 is released, then 7 (5 and 6 done)."""
    consumer = app.consumer
    gate, release = app.ack_gate, ack_for(app)
    tp = _message(app, 0).tp
    for offset in range(5):
        await release(delivery_of(_message(app, offset)))
    assert consumer._filter_committable_offsets([tp]) == {tp: 5}
    consumer._committed_offset[tp] = 5
    _message(app, 6).ack(consumer)  # skipped by faust, never processed
    assert consumer._filter_committable_offsets([tp]) == {}
    assert gate.capped == 1
    await release(delivery_of(_message(app, 5)))
    await release(delivery_of(_message(app, 6)))
    assert consumer._filter_committable_offsets([tp]) == {tp: 7}


async def test_nothing_is_committed_in_a_new_generation_before_a_release(app: Any) -> None:
    """After a rebalance (new generation, committed offset forgotten) a skip-ack commits nothing."""
    consumer = app.consumer
    release = ack_for(app)
    tp = _message(app, 0).tp
    await release(delivery_of(_message(app, 0)))
    app.consumer_generation_id = 4
    consumer._acked.pop(tp, None)
    consumer._acked_index.pop(tp, None)
    consumer._committed_offset.pop(tp, None)
    _message(app, 9, generation=3).ack(consumer)  # a stale buffered event faust skips and acks
    assert consumer._filter_committable_offsets([tp]) == {}


async def test_events_of_an_older_generation_are_not_released(app: Any) -> None:
    """An event fetched before the rebalance is not acked by the pipeline; current ones are."""
    acked: list[Delivery] = []

    async def ack(delivery: Delivery) -> bool:
        acked.append(delivery)
        return True

    release = app.ack_gate.releaser(ack)
    old, new = delivery_of(_message(app, 1, generation=2)), delivery_of(_message(app, 2))
    assert await release(old) is False
    assert await release(new) is True
    assert acked == [new]
