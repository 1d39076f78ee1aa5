"""Terminal output of the query CLI: rich tables, CSV, JSON. Pure: each function returns text or a
renderable from an API answer (the same dicts the HTTP API sends).

Everything shown in a table comes from stored data (site and point names, error text), so it goes in
as ``Text`` (never parsed as rich markup: ``[/]`` neither crashes nor styles) with control characters
made visible (no terminal escape sequence from the data reaches the terminal)."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from rich.console import Group
from rich.table import Table
from rich.text import Text

from streamer.times import ms_to_iso

_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}


def plain(value: Any) -> Text:
    """Data as a rich renderable that is shown as-is: no markup, no emoji codes, no control codes."""
    return Text(str(value).translate(_CONTROL))


def iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return ms_to_iso(ms)


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def as_json(answer: dict[str, Any]) -> str:
    return orjson.dumps(answer, default=str, option=orjson.OPT_INDENT_2).decode()


def samples_csv(answer: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = answer["columns"]
    writer.writerow(columns)
    writer.writerows([row[c] for c in columns] for row in answer["rows"])
    return buffer.getvalue()


def samples_table(answer: dict[str, Any]) -> Table:
    columns = answer["columns"]
    title = (
        f"{answer['site']}: {answer['row_count']} rows, resolution {answer['resolution']}, "
        f"{iso(answer['start'])} .. {iso(answer['end'])}"
    )
    table = Table(title=plain(title), title_justify="left")
    table.add_column("point")
    table.add_column("time (UTC)")
    for name in columns[2:]:
        table.add_column(plain(name), justify="right")
    for row in answer["rows"]:
        table.add_row(
            plain(row["point_name"]), iso(row["timestamp"]), *(plain(_num(row[c])) for c in columns[2:])
        )
    return table


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


GAPS_LIMIT = 20  # points listed by ``streamer gaps`` unless --limit says otherwise


def gaps_view(answer: dict[str, Any], limit: int = GAPS_LIMIT) -> Group:
    """The summary first, then at most ``limit`` points, the most samples missing first."""
    lines = [plain(line) for line in _gaps_summary(answer).splitlines()]
    points = sorted(answer["points"], key=lambda p: (-p["missing"], p["point_name"]))
    more = len(points) - limit
    tail = [plain(f"... {more} more point{'s' * (more != 1)}: --limit N lists more, --format json all")]
    if not points[:limit]:
        return Group(*lines, *(tail if more > 0 else []))
    table = Table(
        title=plain(f"{answer['site']}: points with gaps, most missing first"), title_justify="left"
    )
    for name in ("point", "interval", "gaps", "missing", "longest from (last sample)", "to (next sample)"):
        table.add_column(name, justify="right" if name in ("interval", "gaps", "missing") else "left")
    for point in points[:limit]:
        longest = max(point["gaps"], key=lambda g: (g["end"] - g["start"], -g["start"]))
        table.add_row(
            plain(point["point_name"]),
            plain(f"{point['collect_interval_s']}s"),
            "silent" if point["silent"] else str(len(point["gaps"])),
            str(point["missing"]),
            iso(longest["start"]),
            iso(longest["end"]),
        )
    return Group(*lines, table, *(tail if more > 0 else []))


def _gaps_summary(answer: dict[str, Any]) -> str:
    s = answer["summary"]
    checked = f"{iso(answer['start'])} .. {iso(answer['until'])}"
    if answer["until"] < answer["end"]:
        reason = {"watermark": "the site's watermark", "newest sample": "its newest sample (no sync run)"}
        checked += (
            f" (up to {reason.get(answer['until_source'], answer['until_source'])}, not {iso(answer['end'])})"
        )
    lines = [
        f"{answer['site']}: {checked}",
        f"a gap: more than {answer['tolerance']:g} collect intervals without a sample",
        f"{s['points_judged']} points judged: {s['complete']} complete, {s['with_gaps']} with gaps, "
        f"{s['silent']} silent; {s['missing_samples']} samples missing",
    ]
    if s["not_judged"]:
        lines.append(f"{s['not_judged']} collected points without a collect_interval are not judged")
    if s["worst"]:
        worst = ", ".join(f"{w['point_name']} ({w['missing']} missing in {w['gaps']})" for w in s["worst"])
        lines.append(f"worst: {worst}")
    return "\n".join(lines)


def status_view(answer: dict[str, Any]) -> Group:
    sites = Table(title="Sites", title_justify="left")
    numeric = ("points", "samples", "complete 24h", "repaired", "recovered", "repair req")
    names = ("site", "points", "samples", "last sync", "status", "watermark age", *numeric[2:], "last error")
    for name in names:
        sites.add_column(name, justify="right" if name in numeric else "left")
    for s in answer["sites"]:
        error = s["last_error"] if s["last_error"] else "-"
        if s["last_error_at"]:
            error = f"{iso(s['last_error_at'])} {error}"
        sites.add_row(
            plain(s["site"]),
            str(s["points"]),
            str(s["rows"]),
            iso(s["last_sync_at"]),
            plain(s["last_status"] or "-"),
            age(s["watermark_age_s"]),
            _percent(s.get("completeness_24h")),
            str(s.get("repair_windows_24h", 0)),
            str(s.get("samples_recovered_24h", 0)),
            str(s.get("repair_api_calls_24h", 0)),
            plain(error),
        )
    kafka = answer["kafka"]
    lag = Table(title=plain(f"Consumer lag (group {kafka['group']})"), title_justify="left")
    for name in ("topic", "partition", "committed", "end", "lag"):
        lag.add_column(name, justify="left" if name == "topic" else "right")
    for part in kafka["partitions"]:
        committed = "-" if part["committed"] is None else str(part["committed"])
        lag.add_row(
            plain(part["topic"]), str(part["partition"]), committed, str(part["end"]), str(part["lag"])
        )
    return Group(sites, lag, *(plain(line) for line in _summary(answer).splitlines()))


def _counted_at(answer: dict[str, Any]) -> str:
    """When the exact counts were taken (they are reused for a minute)."""
    at = next((s["rows_counted_at"] for s in answer["sites"] if s.get("rows_counted_at")), None)
    return f" (exact, counted {iso(at)})" if at else " (exact)"


def _percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.2f} %"


def _summary(answer: dict[str, Any]) -> str:
    kafka, clickhouse = answer["kafka"], answer["clickhouse"]
    lines = []
    if kafka["reachable"]:
        lines.append(f"Kafka: total lag {kafka['total_lag']}, DLQ depth {kafka['dlq_depth']}")
    else:
        lines.append(f"Kafka: {kafka['error']}")
    if clickhouse["reachable"]:
        lines.append(
            f"ClickHouse: {clickhouse['target']}, schema version {clickhouse['schema_version']}, "
            f"{clickhouse.get('rows')} samples in timeseries_raw{_counted_at(answer)}, "
            f"{clickhouse.get('rows_stored')} rows stored before merges collapse duplicates"
        )
    else:
        lines.append(f"ClickHouse: unreachable: {clickhouse['error']}")
    return "\n".join(lines)
