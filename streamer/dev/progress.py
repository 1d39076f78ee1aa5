"""What ``streamer dev`` shows: the parts' metrics summed, rates, and each part's state.

Pure functions over scraped figures, so the table and the progress line are unit-tested without
processes. The insert rate is measured over time spent inserting (not idle time between polls), and
over the last few seconds.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.markup import escape
from rich.table import Table

SHOWN = {
    "streamer_samples_fetched_total": "samples fetched from the API",
    "streamer_samples_published_total": "samples published to Kafka",
    "streamer_samples_dropped_total": "samples dropped (not configured / disabled)",
    "streamer_samples_rejected_total": "samples rejected (invalid)",
    "streamer_rows_inserted_total": "rows inserted into ClickHouse",
    "streamer_dlq_records_total": "records sent to the DLQ",
    "streamer_consumer_lag": "consumer lag (records)",
    "streamer_site_failures_total": "failed site cycles",
}
NEXT_CYCLE = "streamer_producer_next_cycle_timestamp_seconds"
SHORT = {
    "streamer_samples_fetched_total": "fetched",
    "streamer_samples_published_total": "published",
    "streamer_rows_inserted_total": "inserted",
    "streamer_samples_dropped_total": "dropped",
    "streamer_samples_rejected_total": "rejected",
    "streamer_dlq_records_total": "dlq",
    "streamer_consumer_lag": "lag",
}
RECENT_S = 10.0


@dataclass
class Progress:
    """Counters shown while the pipeline runs, summed over label values."""

    values: dict[str, float] = field(default_factory=dict)

    def get(self, name: str) -> float:
        return self.values.get(name, 0.0)


def parse_metrics(text: str) -> dict[str, float]:
    """Sum each shown metric over its label values; the next cycle's time is kept as is."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in SHOWN or sample.name == NEXT_CYCLE:
                sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    return sums


def scrape(
    urls: list[str], last: dict[str, dict[str, float]], headers: dict[str, str] | None = None
) -> Progress:
    """Sum the children's metrics; a child that stopped answering keeps its last figures (so the
    summary printed after the producer stopped still counts what it did)."""
    progress = Progress()
    for url in urls:
        with contextlib.suppress(httpx.HTTPError):
            last[url] = parse_metrics(httpx.get(url, timeout=2.0, headers=headers).text)
        for name, value in last.get(url, {}).items():
            progress.values[name] = progress.values.get(name, 0.0) + value
    return progress


class InsertRate:
    """Rows per second over the last ``RECENT_S`` and over the seconds in which rows arrived."""

    def __init__(self) -> None:
        self._recent: deque[tuple[float, float]] = deque()
        self._last: float | None = None
        self._busy_s = 0.0
        self.total = 0.0

    def add(self, at: float, inserted: float) -> None:
        if self._recent and inserted > self._recent[-1][1] and self._last is not None:
            self._busy_s += at - self._last
        self._last = at
        self.total = inserted
        self._recent.append((at, inserted))
        while len(self._recent) > 2 and at - self._recent[1][0] >= RECENT_S:
            self._recent.popleft()

    @property
    def recent(self) -> float:
        if len(self._recent) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._recent[0], self._recent[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    @property
    def while_inserting(self) -> float:
        return self.total / self._busy_s if self._busy_s else 0.0


def next_poll(progress: Progress, now: float, producer: subprocess.Popen[bytes] | None = None) -> str:
    if producer is not None and producer.poll() is not None:
        return "producer stopped"
    at = progress.get(NEXT_CYCLE)
    if at <= 0:
        return "polling now" if NEXT_CYCLE in progress.values else "-"
    return f"in {max(0.0, at - now):,.0f} s"


def part_state(proc: subprocess.Popen[bytes]) -> str:
    code = proc.poll()
    return "running" if code is None else f"exited {code}"


def render(
    progress: Progress, rate: InsertRate, elapsed: float, children: dict[str, subprocess.Popen[bytes]]
) -> Table:
    table = Table(title=f"streamer dev — {elapsed:,.0f}s", show_header=True)
    table.add_column("what")
    table.add_column("value", justify="right")
    for name, label in SHOWN.items():
        table.add_row(label, f"{progress.get(name):,.0f}")
    table.add_row(f"insert rate (rows/s, last {RECENT_S:.0f} s)", f"{rate.recent:,.0f}")
    table.add_row("insert rate (rows/s, while inserting)", f"{rate.while_inserting:,.0f}")
    table.add_row("next poll", next_poll(progress, time.time(), children.get("producer")))
    for part, proc in children.items():
        table.add_row(f"process {escape(part)}", part_state(proc))
    return table


def line(
    progress: Progress, rate: InsertRate, elapsed: float, children: dict[str, subprocess.Popen[bytes]]
) -> str:
    """One plain progress line, for output that is not a terminal."""
    figures = " ".join(f"{short}={progress.get(name):,.0f}" for name, short in SHORT.items())
    parts = " ".join(f"{part}={part_state(proc)}" for part, proc in children.items())
    return (
        f"dev {elapsed:,.0f}s: {figures} rate={rate.recent:,.0f}/s "
        f"next-poll={next_poll(progress, time.time(), children.get('producer')).replace(' ', '')} {parts}"
    )
