"""``streamer dlq list`` and ``streamer dlq replay``: inspect and republish dead letters.

Both read ``ace.dlq`` with a group-less consumer up to the end offsets read at start (nothing is
committed, so listing twice shows the same). Replay republishes the original key and value to the
record's source topic (``ace.samples`` unless it came from ``ace.sync_runs``) with a ``replayed_from``
header; the processor loads it like any record. Replaying twice changes nothing in ClickHouse: rows
collapse by their ReplacingMergeTree key.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError

from streamer.errors import KafkaTransientError
from streamer.kafka import reliable_producer, start_client
from streamer.processor.dlq import H_ATTEMPTS, H_FIRST_FAILED_AT, H_REPLAYED_FROM
from streamer.processor.reader import TopicReader
from streamer.settings import Settings


@dataclass(frozen=True, slots=True)
class DlqEntry:
    """One dead letter as read back from the DLQ topic."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]

    @property
    def error_class(self) -> str:
        return self.headers.get("error_class", "?")

    @property
    def ref(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


@dataclass
class DlqSummary:
    total: int = 0
    by_class: Counter[str] = field(default_factory=Counter)
    by_stage: Counter[str] = field(default_factory=Counter)
    oldest_ms: int | None = None
    newest_ms: int | None = None
    examples: list[DlqEntry] = field(default_factory=list)


def _entry(record: ConsumerRecord[bytes, bytes]) -> DlqEntry:
    headers = {name: value.decode("utf-8", "replace") for name, value in record.headers or ()}
    return DlqEntry(
        record.topic, record.partition, record.offset, record.timestamp, record.key, record.value, headers
    )


async def read_dlq(settings: Settings) -> list[DlqEntry]:
    """Every dead letter currently on the DLQ topic, in partition then offset order."""
    reader = TopicReader(settings, settings.topic_dlq, client_suffix="dlq-reader")
    entries: list[DlqEntry] = []
    await reader.start()
    try:
        await reader.read_to_end(lambda records: entries.extend(_entry(r) for r in records))
    finally:
        await reader.stop()
    entries.sort(key=lambda e: (e.partition, e.offset))
    return entries


def summarise(entries: Sequence[DlqEntry], examples: int = 3) -> DlqSummary:
    """Counts by error class and stage, the time span, and the first examples of each class."""
    summary = DlqSummary(total=len(entries))
    for entry in entries:
        summary.by_class[entry.error_class] += 1
        summary.by_stage[entry.headers.get("stage", "?")] += 1
        if summary.oldest_ms is None or entry.timestamp_ms < summary.oldest_ms:
            summary.oldest_ms = entry.timestamp_ms
        if summary.newest_ms is None or entry.timestamp_ms > summary.newest_ms:
            summary.newest_ms = entry.timestamp_ms
        if sum(1 for e in summary.examples if e.error_class == entry.error_class) < examples:
            summary.examples.append(entry)
    return summary


def format_summary(summary: DlqSummary, topic: str) -> list[str]:
    """Human-readable lines of ``summary``."""
    if not summary.total:
        return [f"{topic}: empty"]
    lines = [
        f"{topic}: {summary.total} dead letters, "
        f"oldest {_iso(summary.oldest_ms)}, newest {_iso(summary.newest_ms)}",
        "by error class: " + ", ".join(f"{name}={n}" for name, n in summary.by_class.most_common()),
        "by stage: " + ", ".join(f"{name}={n}" for name, n in summary.by_stage.most_common()),
        "examples:",
    ]
    for entry in summary.examples:
        key = entry.key.decode("utf-8", "replace") if entry.key else "-"
        where = f"{entry.headers.get('source_topic', '?')}:{entry.headers.get('source_partition', '?')}"
        where += f":{entry.headers.get('source_offset', '?')}"
        lines.append(
            f"  {entry.ref} key={key} from={where} stage={entry.headers.get('stage', '?')} "
            f"{entry.error_class}: {entry.headers.get('error_message', '')[:160]}"
        )
    return lines


def select(entries: Sequence[DlqEntry], error_class: str | None, since_ms: int | None) -> list[DlqEntry]:
    """The entries of ``error_class`` (any if None) dead-lettered at or after ``since_ms``."""
    return [
        e
        for e in entries
        if (error_class is None or e.error_class == error_class)
        and (since_ms is None or e.timestamp_ms >= since_ms)
    ]


def parse_since(text: str) -> int:
    """``--since``: ISO 8601 (naive means UTC) or epoch milliseconds → epoch ms."""
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def replay_target(settings: Settings, entry: DlqEntry) -> str:
    source = entry.headers.get("source_topic")
    return source if source in (settings.topic_samples, settings.topic_sync_runs) else settings.topic_samples


def replay_headers(entry: DlqEntry) -> list[tuple[str, bytes]]:
    """Headers of a replayed record: where it was in the DLQ, and its failure history."""
    headers = [(H_REPLAYED_FROM, entry.ref.encode())]
    for name in (H_ATTEMPTS, H_FIRST_FAILED_AT):
        if name in entry.headers:
            headers.append((name, entry.headers[name].encode()))
    return headers


async def replay(settings: Settings, entries: Sequence[DlqEntry]) -> int:
    """Republish ``entries`` to their source topics; returns how many were acknowledged."""
    if not entries:
        return 0
    producer = reliable_producer(settings, client_id=f"{settings.kafka_client_id}-dlq-replay")
    await start_client(producer, settings)
    try:
        futures = [
            await producer.send(replay_target(settings, e), e.value, key=e.key, headers=replay_headers(e))
            for e in entries
        ]
        await asyncio.gather(*futures)
    except KafkaError as exc:
        raise KafkaTransientError(f"replay failed: {exc}") from exc
    finally:
        await producer.stop()
    return len(entries)


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
