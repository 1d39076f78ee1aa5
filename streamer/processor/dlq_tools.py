"""Reading the dead-letter queue back: its letters, what became of each, and a summary.

``ace.dlq`` is append-only; ``ace.dlq_state`` (compacted, key ``letter_id``) records what happened to a
letter since: replayed, failed again, acknowledged or purged by an operator. A letter is the newest
``ace.dlq`` record of its ``letter_id`` (a letter is appended again only when its record nears the end
of the DLQ's retention), merged with its state. Both topics are read with group-less consumers up to
the end offsets read at start, nothing committed, one fetch at a time: the DLQ's values are never all
held, only a small tuple per letter. Replay, ack and purge are in ``dlq_actions``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field

import orjson
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from streamer.kafka import TopicReader
from streamer.models import DlqLetterState
from streamer.processor.dlq import (
    H_ATTEMPTS,
    H_ERROR_CLASS,
    H_LETTER_ID,
    H_SOURCE_OFFSET,
    H_SOURCE_PARTITION,
    H_SOURCE_TOPIC,
    H_STAGE,
)
from streamer.settings import Settings
from streamer.times import ms_to_iso

DETERMINISTIC_STAGES = frozenset({"decode", "normalise"})
"""Stages whose failures depend only on the record's bytes and the code: replaying them cannot succeed
until the code or the record changes, so ``replay`` asks for ``--force``."""


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
        return self.headers.get(H_ERROR_CLASS, "?")

    @property
    def stage(self) -> str:
        return self.headers.get(H_STAGE, "?")

    @property
    def ref(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def letter_id(self) -> str:
        """Written since letters have ids; older letters are named by their source position alike."""
        h = self.headers
        if H_LETTER_ID in h:
            return h[H_LETTER_ID]
        if H_SOURCE_OFFSET in h:
            return f"{h.get(H_SOURCE_TOPIC)}:{h.get(H_SOURCE_PARTITION)}:{h[H_SOURCE_OFFSET]}"
        return self.ref

    @property
    def attempts(self) -> int:
        try:
            return int(self.headers.get(H_ATTEMPTS, "1"))
        except ValueError:
            return 1


@dataclass(frozen=True, slots=True)
class Letter:
    """What is kept per letter while reading: where its newest record is, and why it failed."""

    letter_id: str
    partition: int
    offset: int
    timestamp_ms: int
    error_class: str
    stage: str
    attempts: int
    status: str  # "open" (never replayed) or a DlqLetterState status

    @property
    def closed(self) -> bool:
        return self.status in ("acked", "purged")


def entry_of(record: ConsumerRecord[bytes, bytes]) -> DlqEntry:
    headers = {name: value.decode("utf-8", "replace") for name, value in record.headers or ()}
    return DlqEntry(
        record.topic, record.partition, record.offset, record.timestamp, record.key, record.value, headers
    )


async def read_states(settings: Settings) -> dict[str, DlqLetterState]:
    """The latest state of every letter that has one (undecodable state records are ignored)."""
    states: dict[str, DlqLetterState] = {}

    def take(records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        for record in records:
            if record.key is None:
                continue
            if record.value is None:
                states.pop(record.key.decode("utf-8", "replace"), None)
                continue
            try:
                state = DlqLetterState.model_validate(orjson.loads(record.value))
            except (orjson.JSONDecodeError, ValidationError):
                continue
            states[state.letter_id] = state

    reader = TopicReader(settings, settings.topic_dlq_state, client_suffix="dlq-state-reader")
    await reader.start()
    try:
        await reader.read_to_end(take)
    finally:
        await reader.stop()
    return states


async def iter_dlq(settings: Settings) -> AsyncIterator[list[DlqEntry]]:
    """The DLQ's records up to its current end, one fetch at a time."""
    reader = TopicReader(settings, settings.topic_dlq, client_suffix="dlq-reader")
    await reader.start()
    try:
        async with aclosing(reader.batches_to_end()) as batches:
            async for records in batches:
                yield [entry_of(r) for r in records]
    finally:
        await reader.stop()


def letter_of(entry: DlqEntry, states: dict[str, DlqLetterState]) -> Letter:
    state = states.get(entry.letter_id)
    return Letter(
        entry.letter_id,
        entry.partition,
        entry.offset,
        entry.timestamp_ms,
        (state.error_class if state and state.error_class else entry.error_class),
        (state.stage if state and state.stage else entry.stage),
        max(entry.attempts, state.attempts if state else 0),
        state.status if state else "open",
    )


@dataclass
class DlqSummary:
    total: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_class: Counter[str] = field(default_factory=Counter)
    by_stage: Counter[str] = field(default_factory=Counter)
    oldest_ms: int | None = None
    newest_ms: int | None = None
    max_attempts: int = 0
    examples: list[DlqEntry] = field(default_factory=list)


class Summariser:
    """Folds DLQ entries into a summary of distinct letters; keeps only ``examples`` records per class."""

    def __init__(self, states: dict[str, DlqLetterState], examples: int = 3) -> None:
        self.states = states
        self.examples = examples
        self.letters: dict[str, Letter] = {}
        self._examples: list[DlqEntry] = []
        self._shown: Counter[str] = Counter()

    def add(self, entries: Iterable[DlqEntry]) -> None:
        for entry in entries:
            letter = letter_of(entry, self.states)
            known = letter.letter_id in self.letters
            self.letters[letter.letter_id] = letter  # the newest record of a letter wins
            if not known and not letter.closed and self._shown[letter.error_class] < self.examples:
                self._shown[letter.error_class] += 1
                self._examples.append(entry)

    def summary(self) -> DlqSummary:
        summary = DlqSummary(total=len(self.letters))
        for letter in self.letters.values():
            summary.by_status[letter.status] += 1
            if letter.closed:
                continue
            summary.by_class[letter.error_class] += 1
            summary.by_stage[letter.stage] += 1
            summary.max_attempts = max(summary.max_attempts, letter.attempts)
            if summary.oldest_ms is None or letter.timestamp_ms < summary.oldest_ms:
                summary.oldest_ms = letter.timestamp_ms
            if summary.newest_ms is None or letter.timestamp_ms > summary.newest_ms:
                summary.newest_ms = letter.timestamp_ms
        summary.examples = list(self._examples)
        return summary


def summarise(
    entries: Sequence[DlqEntry], examples: int = 3, states: dict[str, DlqLetterState] | None = None
) -> DlqSummary:
    """Counts of the distinct letters by status, and of the open ones by error class and stage."""
    folder = Summariser(states or {}, examples)
    folder.add(entries)
    return folder.summary()


async def read_summary(settings: Settings, examples: int = 3) -> DlqSummary:
    folder = Summariser(await read_states(settings), examples)
    async for entries in iter_dlq(settings):
        folder.add(entries)
    return folder.summary()


def format_summary(summary: DlqSummary, topic: str) -> list[str]:
    """Human-readable lines of ``summary``."""
    if not summary.total:
        return [f"{topic}: empty"]
    status = summary.by_status
    opened = summary.total - status["acked"] - status["purged"]
    lines = [
        f"{topic}: {summary.total} dead letters: {opened} open (never replayed {status['open']}, "
        f"replayed {status['replayed']}, failed again {status['failed']}), "
        f"acknowledged {status['acked']}, purged {status['purged']}",
    ]
    if not opened:
        return lines
    lines += [
        "by error class: " + ", ".join(f"{name}={n}" for name, n in summary.by_class.most_common()),
        "by stage: " + ", ".join(f"{name}={n}" for name, n in summary.by_stage.most_common()),
        f"open since {iso(summary.oldest_ms)}, newest {iso(summary.newest_ms)}, "
        f"most attempts {summary.max_attempts}",
        "examples:",
    ]
    for entry in summary.examples:
        key = entry.key.decode("utf-8", "replace") if entry.key else "-"
        lines.append(
            f"  {entry.letter_id} key={key} at={entry.ref} stage={entry.stage} "
            f"{entry.error_class}: {entry.headers.get('error_message', '')[:160]}"
        )
    return lines


def select(entries: Sequence[DlqEntry], error_class: str | None, since_ms: int | None) -> list[DlqEntry]:
    """The entries of ``error_class`` (any if None) dead-lettered at or after ``since_ms``."""
    return [e for e in entries if matches(e.error_class, e.timestamp_ms, error_class, since_ms)]


def matches(entry_class: str, timestamp_ms: int, error_class: str | None, since_ms: int | None) -> bool:
    return (error_class is None or entry_class == error_class) and (
        since_ms is None or timestamp_ms >= since_ms
    )


def iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return ms_to_iso(ms, digits=0)
