"""``streamer dlq replay|ack|purge``: act on dead letters so that the DLQ converges.

Replay republishes a letter's original key and value to its source topic (``ace.samples`` unless it came
from ``ace.sync_runs``) with its ``letter_id``; the processor loads it like any record, and if it fails
again records a ``failed`` state instead of a second copy. Before a chunk of letters is sent, their
``replayed`` state is written (and restored if the send fails), so a failure written by the processor is
never overwritten by the replay that caused it. Letters already replayed are skipped unless ``again``;
letters whose stage fails deterministically (``DETERMINISTIC_STAGES``) need ``force``. Ack and purge
close letters in ``ace.dlq_state``; purge also deletes the DLQ's records below the oldest letter still
open in each partition (Kafka's DeleteRecords: the topic itself stays append-only).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from time import time_ns

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.errors import KafkaError

from streamer.errors import KafkaTransientError
from streamer.kafka import TopicReader, reliable_producer, start_client
from streamer.models import DlqLetterState, LetterStatus
from streamer.processor.dlq import (
    H_ATTEMPTS,
    H_DLQ_WRITTEN_AT,
    H_FIRST_FAILED_AT,
    H_LETTER_ID,
    H_REPLAYED_FROM,
    H_SOURCE_TOPIC,
)
from streamer.processor.dlq_tools import (
    DETERMINISTIC_STAGES,
    DlqEntry,
    Letter,
    iter_dlq,
    letter_of,
    matches,
    read_states,
)
from streamer.settings import Settings


@dataclass(frozen=True, slots=True)
class Filters:
    """Which letters a command acts on; no filter at all matches every letter."""

    error_class: str | None = None
    since_ms: int | None = None
    ids: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return self.error_class is None and self.since_ms is None and not self.ids

    def match(self, letter: Letter) -> bool:
        if self.ids and letter.letter_id not in self.ids:
            return False
        return matches(letter.error_class, letter.timestamp_ms, self.error_class, self.since_ms)


@dataclass
class Plan:
    """The letters a command will act on, and why the other matching ones are left."""

    selected: list[Letter] = field(default_factory=list)
    matched: int = 0
    closed: int = 0
    replayed: int = 0
    needs_force: Counter[str] = field(default_factory=Counter)
    open_classes: Counter[str] = field(default_factory=Counter)


@dataclass
class Survey:
    letters: dict[str, Letter]
    states: dict[str, DlqLetterState]


async def survey(settings: Settings) -> Survey:
    """Every letter (its newest DLQ record) merged with its state; values are not kept."""
    states = await read_states(settings)
    letters: dict[str, Letter] = {}
    async for entries in iter_dlq(settings):
        for entry in entries:
            letters[entry.letter_id] = letter_of(entry, states)
    return Survey(letters, states)


def plan_replay(letters: Iterable[Letter], filters: Filters, *, again: bool, force: bool) -> Plan:
    """Select the letters to replay: open, matching, not replayed before (unless ``again``), and of a
    stage that can succeed on a replay (unless ``force``)."""
    plan = Plan()
    for letter in letters:
        if not letter.closed:
            plan.open_classes[letter.error_class] += 1
        if not filters.match(letter):
            continue
        plan.matched += 1
        if letter.closed:
            plan.closed += 1
        elif letter.status in ("replayed", "failed") and not again:
            plan.replayed += 1
        elif letter.stage in DETERMINISTIC_STAGES and not force:
            plan.needs_force[letter.error_class] += 1
        else:
            plan.selected.append(letter)
    return plan


def plan_close(letters: Iterable[Letter], filters: Filters) -> Plan:
    """Select the open letters matching ``filters`` (ack and purge)."""
    plan = Plan()
    for letter in letters:
        if not letter.closed:
            plan.open_classes[letter.error_class] += 1
        if filters.match(letter):
            plan.matched += 1
            if letter.closed:
                plan.closed += 1
            else:
                plan.selected.append(letter)
    return plan


def replay_target(settings: Settings, entry: DlqEntry) -> str:
    source = entry.headers.get(H_SOURCE_TOPIC)
    return source if source in (settings.topic_samples, settings.topic_sync_runs) else settings.topic_samples


def replay_headers(entry: DlqEntry, attempts: int | None = None) -> list[tuple[str, bytes]]:
    """Headers of a replayed record: its letter, where it was in the DLQ, and its failure history."""
    headers = [
        (H_REPLAYED_FROM, entry.ref.encode()),
        (H_LETTER_ID, entry.letter_id.encode()),
        (H_DLQ_WRITTEN_AT, str(entry.timestamp_ms).encode()),
        (H_ATTEMPTS, str(attempts if attempts is not None else entry.attempts).encode()),
    ]
    if H_FIRST_FAILED_AT in entry.headers:
        headers.append((H_FIRST_FAILED_AT, entry.headers[H_FIRST_FAILED_AT].encode()))
    return headers


def state_of(letter: Letter, status: LetterStatus, now_ms: int) -> DlqLetterState:
    return DlqLetterState(
        letter_id=letter.letter_id,
        status=status,
        attempts=max(1, letter.attempts),
        updated_at_ms=now_ms,
        error_class=letter.error_class,
        stage=letter.stage,
    )


async def _await_all(sends: Sequence[asyncio.Future[object]], what: str) -> None:
    try:
        await asyncio.gather(*sends)
    except KafkaError as exc:
        raise KafkaTransientError(f"{what} failed: {exc}") from exc


async def _write_states(
    producer: AIOKafkaProducer, topic: str, states: Sequence[tuple[str, bytes | None]]
) -> None:
    sends = [await producer.send(topic, value, key=letter_id.encode()) for letter_id, value in states]
    await _await_all(sends, f"writing {topic}")


async def replay(settings: Settings, plan: Plan, states: dict[str, DlqLetterState]) -> int:
    """Republish the planned letters, a DLQ fetch at a time; returns how many were acknowledged."""
    if not plan.selected:
        return 0
    wanted = {(letter.partition, letter.offset): letter for letter in plan.selected}
    producer = reliable_producer(settings, client_id=f"{settings.kafka_client_id}-dlq-replay")
    await start_client(producer, settings)
    replayed = 0
    try:
        async for entries in iter_dlq(settings):
            chunk = [
                (e, wanted[(e.partition, e.offset)]) for e in entries if (e.partition, e.offset) in wanted
            ]
            if chunk:
                replayed += await _replay_chunk(settings, producer, chunk, states)
    finally:
        await producer.stop()
    return replayed


async def _replay_chunk(
    settings: Settings,
    producer: AIOKafkaProducer,
    chunk: list[tuple[DlqEntry, Letter]],
    states: dict[str, DlqLetterState],
) -> int:
    now_ms = time_ns() // 1_000_000
    marked = [
        (letter.letter_id, state_of(letter, "replayed", now_ms).model_dump_json().encode())
        for _, letter in chunk
    ]
    await _write_states(producer, settings.topic_dlq_state, marked)
    try:
        sends = [
            await producer.send(
                replay_target(settings, entry),
                entry.value,
                key=entry.key,
                headers=replay_headers(entry, letter.attempts),
            )
            for entry, letter in chunk
        ]
        await _await_all(sends, "replay")
    except (KafkaError, KafkaTransientError):
        restore = [(lid, _previous(states, lid)) for lid, _ in marked]
        await _write_states(producer, settings.topic_dlq_state, restore)
        raise
    return len(chunk)


def _previous(states: dict[str, DlqLetterState], letter_id: str) -> bytes | None:
    state = states.get(letter_id)
    return None if state is None else state.model_dump_json().encode()


async def close(settings: Settings, plan: Plan, status: LetterStatus) -> int:
    """Record ``status`` (acked or purged) for the planned letters; returns how many."""
    if not plan.selected:
        return 0
    now_ms = time_ns() // 1_000_000
    producer = reliable_producer(settings, client_id=f"{settings.kafka_client_id}-dlq-close")
    await start_client(producer, settings)
    try:
        marked = [
            (x.letter_id, state_of(x, status, now_ms).model_dump_json().encode()) for x in plan.selected
        ]
        await _write_states(producer, settings.topic_dlq_state, marked)
    finally:
        await producer.stop()
    return len(plan.selected)


async def delete_closed_prefix(settings: Settings) -> dict[int, int]:
    """Delete, in each DLQ partition, the records below its oldest open letter; returns partition → offset."""
    letters = (await survey(settings)).letters.values()
    cut: dict[int, int] = {}
    ends = await _end_offsets(settings)
    for partition, end in ends.items():
        open_offsets = [x.offset for x in letters if x.partition == partition and not x.closed]
        cut[partition] = min(open_offsets, default=end)
    cut = {p: o for p, o in cut.items() if o > 0}
    if not cut:
        return {}
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id=f"{settings.kafka_client_id}-dlq-purge"
    )
    try:
        await admin.start()
        await admin.delete_records(
            {TopicPartition(settings.topic_dlq, p): RecordsToDelete(o) for p, o in cut.items()}
        )
    except KafkaError as exc:
        raise KafkaTransientError(f"deleting records of {settings.topic_dlq} failed: {exc}") from exc
    finally:
        await admin.close()
    return cut


async def _end_offsets(settings: Settings) -> dict[int, int]:
    reader = TopicReader(settings, settings.topic_dlq, client_suffix="dlq-ends")
    await reader.start()
    try:
        return {tp.partition: offset for tp, offset in (await reader.end_offsets()).items()}
    finally:
        await reader.stop()
