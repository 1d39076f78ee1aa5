"""Dead letters: every contract header, failure history across replays, selection and summary."""

from __future__ import annotations

from streamer import __version__
from streamer.models import DLQ_HEADERS, DlqLetterState
from streamer.processor.dlq import DeadLetter, dlq_headers, failed_state, fails_again
from streamer.processor.dlq_actions import Filters, plan_replay, replay_headers, replay_target
from streamer.processor.dlq_tools import (
    DlqEntry,
    format_summary,
    letter_of,
    select,
    summarise,
)
from streamer.settings import Settings
from streamer.times import to_ms as parse_since

CONTRACT_HEADERS = {
    "error_class",
    "error_message",
    "stage",
    "attempts",
    "first_failed_at",
    "last_failed_at",
    "source_topic",
    "source_partition",
    "source_offset",
    "batch_token",
    "app_version",
    "letter_id",
}


def letter(headers: dict[str, bytes] | None = None, message: str = "bad") -> DeadLetter:
    return DeadLetter(
        b"s/p", b"{x", "RecordDecodeError", message, "decode", "t.samples", 3, 42, "tok", headers or {}
    )


def test_headers_carry_every_contract_field() -> None:
    """A first failure has attempts 1, first == last failure time, the source position and version."""
    headers = {name: value.decode() for name, value in dlq_headers(letter(), "2024-01-01T00:00:00.000Z")}
    assert set(headers) == CONTRACT_HEADERS
    assert headers["attempts"] == "1"
    assert headers["first_failed_at"] == headers["last_failed_at"] == "2024-01-01T00:00:00.000Z"
    assert (headers["source_topic"], headers["source_partition"], headers["source_offset"]) == (
        "t.samples",
        "3",
        "42",
    )
    assert headers["app_version"] == __version__
    assert headers["batch_token"] == "tok"
    assert headers["letter_id"] == "t.samples:3:42"


def test_a_replayed_record_that_fails_again_counts_on() -> None:
    """attempts and first_failed_at carry over from a replay; replayed_from is kept."""
    previous = {"attempts": b"2", "first_failed_at": b"2023-05-05T00:00:00Z", "replayed_from": b"t.dlq:0:7"}
    headers = {n: v.decode() for n, v in dlq_headers(letter(previous), "2024-01-01T00:00:00.000Z")}
    assert headers["attempts"] == "3"
    assert headers["first_failed_at"] == "2023-05-05T00:00:00Z"
    assert headers["last_failed_at"] == "2024-01-01T00:00:00.000Z"
    assert headers["replayed_from"] == "t.dlq:0:7"


def test_error_messages_are_one_bounded_line() -> None:
    """Long, multi-line messages are flattened and cut to 500 characters."""
    headers = dict(dlq_headers(letter(message="line\n" * 400), "now"))
    text = headers["error_message"].decode()
    assert "\n" not in text and len(text) == 500 and text.endswith("...")


def entry(offset: int, ts: int, error_class: str, source: str = "t.samples") -> DlqEntry:
    headers = {"error_class": error_class, "stage": "decode", "source_topic": source, "attempts": "1"}
    headers["first_failed_at"] = "2024-01-01T00:00:00Z"
    return DlqEntry("t.dlq", 0, offset, ts, b"k", b"v", headers)


def test_select_filters_by_class_and_time_and_summary_counts() -> None:
    """Replay selection honours --error-class and --since; the summary counts by class and spans time."""
    entries = [entry(0, 1000, "A"), entry(1, 2000, "B"), entry(2, 3000, "A"), entry(3, 4000, "A")]
    assert [e.offset for e in select(entries, "A", None)] == [0, 2, 3]
    assert [e.offset for e in select(entries, "A", 3000)] == [2, 3]
    assert [e.offset for e in select(entries, None, 2000)] == [1, 2, 3]
    summary = summarise(entries, examples=2)
    assert summary.total == 4 and dict(summary.by_class) == {"A": 3, "B": 1}
    assert (summary.oldest_ms, summary.newest_ms) == (1000, 4000)
    assert [e.offset for e in summary.examples] == [0, 1, 2]
    lines = format_summary(summary, "t.dlq")
    assert lines[0].startswith("t.dlq: 4 dead letters") and "A=3, B=1" in lines[1]


def test_replay_goes_back_to_the_source_topic_with_history(base_settings: Settings) -> None:
    """Replays target the record's source topic (samples by default) and carry replayed_from."""
    samples = entry(5, 1, "A", source=base_settings.topic_samples)
    runs = entry(6, 1, "A", source=base_settings.topic_sync_runs)
    odd = entry(7, 1, "A", source="somewhere.else")
    assert replay_target(base_settings, samples) == base_settings.topic_samples
    assert replay_target(base_settings, runs) == base_settings.topic_sync_runs
    assert replay_target(base_settings, odd) == base_settings.topic_samples
    headers = dict(replay_headers(samples))
    assert headers == {
        "replayed_from": b"t.dlq:0:5",
        "letter_id": b"t.dlq:0:5",
        "dlq_written_at": b"1",
        "attempts": b"1",
        "first_failed_at": b"2024-01-01T00:00:00Z",
    }


def test_parse_since_accepts_iso_and_epoch_ms() -> None:
    """--since takes ISO 8601 (naive = UTC) or epoch milliseconds."""
    assert parse_since("1704067200000") == 1_704_067_200_000
    assert parse_since("2024-01-01T00:00:00Z") == 1_704_067_200_000
    assert parse_since("2024-01-01T01:00:00+01:00") == 1_704_067_200_000
    assert parse_since("2024-01-01") == 1_704_067_200_000


def replayed(written_at_ms: int) -> DeadLetter:
    return letter(
        {"letter_id": b"t.samples:3:42", "attempts": b"1", "dlq_written_at": str(written_at_ms).encode()}
    )


def test_a_replay_that_fails_again_records_a_state_not_a_copy() -> None:
    """A replayed letter failing again within half the retention becomes a failed state with attempts + 1."""
    day = 86_400_000
    assert fails_again(replayed(10 * day), now_ms=20 * day, retention_ms=30 * day)
    assert not fails_again(
        replayed(10 * day), now_ms=26 * day, retention_ms=30 * day
    )  # re-appended: outlives it
    assert fails_again(replayed(0), now_ms=100 * day, retention_ms=-1)  # kept for ever
    assert not fails_again(letter(), now_ms=1, retention_ms=30 * day)  # a first failure is a new letter
    state = failed_state(replayed(0), now_ms=5)
    assert (state.letter_id, state.status, state.attempts, state.error_class) == (
        "t.samples:3:42",
        "failed",
        2,
        "RecordDecodeError",
    )


def copy(
    offset: int, ts: int, letter_id: str, stage: str = "insert", error_class: str = "SinkPermanentError"
) -> DlqEntry:
    headers = {"error_class": error_class, "stage": stage, "letter_id": letter_id, "attempts": "1"}
    return DlqEntry("t.dlq", 0, offset, ts, b"k", b"v", headers)


def test_letters_are_distinct_by_id_and_merged_with_their_state() -> None:
    """Two records of one letter count once (the newest wins); its state gives status and attempts."""
    entries = [copy(0, 1, "a"), copy(1, 2, "b"), copy(2, 3, "a")]
    states = {"a": DlqLetterState(letter_id="a", status="failed", attempts=4, updated_at_ms=9)}
    summary = summarise(entries, states=states)
    assert summary.total == 2 and dict(summary.by_status) == {"failed": 1, "open": 1}
    assert summary.max_attempts == 4
    assert letter_of(entries[2], states).offset == 2
    closed = {"a": DlqLetterState(letter_id="a", status="acked", attempts=1, updated_at_ms=9)}
    assert dict(summarise(entries, states=closed).by_class) == {"SinkPermanentError": 1}


def test_replay_skips_closed_replayed_and_deterministic_letters_unless_asked() -> None:
    """Acked letters never replay; replayed ones need --again; decode/normalise failures need --force."""
    states = {
        "acked": DlqLetterState(letter_id="acked", status="acked", attempts=1, updated_at_ms=1),
        "again": DlqLetterState(letter_id="again", status="failed", attempts=2, updated_at_ms=1),
    }
    entries = [
        copy(0, 1, "acked"),
        copy(1, 1, "again"),
        copy(2, 1, "fresh"),
        copy(3, 1, "decode", stage="decode", error_class="RecordDecodeError"),
    ]
    letters = [letter_of(e, states) for e in entries]
    plan = plan_replay(letters, Filters(), again=False, force=False)
    assert [x.letter_id for x in plan.selected] == ["fresh"]
    assert (plan.matched, plan.closed, plan.replayed, dict(plan.needs_force)) == (
        4,
        1,
        1,
        {"RecordDecodeError": 1},
    )
    everything = plan_replay(letters, Filters(), again=True, force=True)
    assert [x.letter_id for x in everything.selected] == ["again", "fresh", "decode"]
    nope = plan_replay(letters, Filters(error_class="Nope"), again=True, force=True)
    assert nope.matched == 0 and dict(nope.open_classes) == {"SinkPermanentError": 2, "RecordDecodeError": 1}


def test_since_options_read_the_one_time_rule() -> None:
    """dlq replay/ack/purge --since parse like every time option: exact floor ms, no float error."""
    from streamer.processor.dlq_cli import dlq

    for name in ("replay", "ack", "purge"):
        (since,) = [p for p in dlq.commands[name].params if p.name == "since"]
        assert since.type.convert("1970-07-14T18:37:25.448Z", since, None) == 16_828_645_448
        assert since.type.convert("2109-05-13T07:24:52.030Z", since, None) == 4_397_873_092_030


def test_every_header_the_processor_writes_is_in_the_one_list() -> None:
    """A dead letter's headers, a replayed one's included, are names of ``models.DLQ_HEADERS`` only."""
    replayed = letter({"replayed_from": b"t.dlq:0:7", "letter_id": b"t.samples:3:42", "attempts": b"2"})
    names = {name for name, _ in dlq_headers(replayed, "2024-01-01T00:00:00Z")}
    assert "replayed_from" in names and names <= set(DLQ_HEADERS)
    assert set(DLQ_HEADERS) >= CONTRACT_HEADERS
