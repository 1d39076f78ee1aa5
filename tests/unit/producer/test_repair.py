"""Unit tests of the repair schedule and budget: each hour is due once per age, oldest age kept."""

from __future__ import annotations

from streamer.producer.repair import HOUR_MS, Budget, due_hours

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
