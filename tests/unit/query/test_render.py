"""CLI output: times, ages, CSV, and the rich tables of query, gaps and status."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from streamer.query import render


def _text(renderable: Any) -> str:
    console = Console(record=True, width=200)
    console.print(renderable)
    return console.export_text()


SAMPLES = {
    "site": "s1",
    "start": 0,
    "end": 600_000,
    "resolution": "5m",
    "row_count": 1,
    "columns": ["point_name", "timestamp", "value", "min", "max", "count"],
    "rows": [{"point_name": "p", "timestamp": 300_000, "value": 1.25, "min": 1.0, "max": 1.5, "count": 2}],
}


def test_iso_and_age() -> None:
    """Epoch ms prints as UTC ISO with milliseconds; ages pick a unit; missing values print '-'."""
    assert render.iso(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"
    assert render.iso(None) == "-"
    assert (render.age(42), render.age(90), render.age(7200), render.age(None)) == (
        "42s",
        "1.5m",
        "2.0h",
        "-",
    )


def test_samples_csv_and_table() -> None:
    """CSV has the answer's columns as header; the table shows ISO times and every rollup column."""
    assert (
        render.samples_csv(SAMPLES) == "point_name,timestamp,value,min,max,count\np,300000,1.25,1.0,1.5,2\n"
    )
    text = _text(render.samples_table(SAMPLES))
    assert "1970-01-01T00:05:00.000Z" in text and "1.25" in text and "resolution 5m" in text


def _gap_answer(points: int) -> dict[str, Any]:
    listed: list[dict[str, Any]] = [
        {
            "point_name": f"p{i:02d}",
            "collect_interval_s": 60,
            "silent": i == 0,
            "missing": 100 - i,
            "gaps": [
                {"start": 0, "end": 600_000, "missing": 9},
                {"start": 700_000, "end": 800_000, "missing": 1},
            ],
        }
        for i in range(points)
    ]
    summary = {
        "points_judged": 50,
        "complete": 50 - points,
        "with_gaps": max(0, points - 1),
        "silent": min(points, 1),
        "not_judged": 3,
        "missing_samples": sum(p["missing"] for p in listed),
        "worst": [{"point_name": "p01", "gaps": 2, "missing": 99}] if points > 1 else [],
    }
    return {
        "site": "s1",
        "start": 0,
        "end": 7_200_000,
        "until": 3_000_000,
        "until_source": "watermark",
        "tolerance": 2.5,
        "summary": summary,
        "points": listed,
    }


def test_gaps_view_summary_first_then_at_most_limit_points() -> None:
    """The summary (checked span up to the watermark, counts, worst points) comes first; the table lists
    at most ``limit`` points, most missing first, and says how many more there are."""
    text = _text(render.gaps_view(_gap_answer(30), limit=5))
    lines = text.splitlines()
    assert lines[0].startswith(
        "s1: 1970-01-01T00:00:00.000Z .. 1970-01-01T00:50:00.000Z (up to the site's watermark"
    )
    assert "50 points judged: 20 complete, 29 with gaps, 1 silent" in text and "not judged" in text
    assert "worst: p01 (99 missing in 2)" in text and "... 25 more points" in text
    rows = [line for line in lines if line.startswith("│ p")]
    assert [r.split()[1] for r in rows] == ["p00", "p01", "p02", "p03", "p04"] and "silent" in rows[0]
    assert "1970-01-01T00:10:00.000Z" in rows[1] and len(lines) <= 5 + 12


def test_gaps_view_without_gaps_is_the_summary_alone() -> None:
    """No point with gaps: the summary lines, no table."""
    text = _text(render.gaps_view(_gap_answer(0)))
    assert "50 points judged: 50 complete, 0 with gaps, 0 silent" in text and "│" not in text


def test_status_view_shows_sites_lag_dlq_and_rows() -> None:
    """The status view carries every figure the brief asks for, and Kafka's error when unreachable."""
    site = {
        "site": "s1",
        "points": 3,
        "rows": 120,
        "last_sync_at": 0,
        "last_status": "failed",
        "watermark_age_s": 90.0,
        "last_error": "boom",
        "last_error_at": 0,
    }
    answer: dict[str, Any] = {
        "sites": [site],
        "kafka": {
            "reachable": True,
            "group": "g",
            "total_lag": 5,
            "dlq_depth": 2,
            "error": None,
            "partitions": [{"topic": "t", "partition": 0, "committed": None, "end": 5, "lag": 5}],
        },
        "clickhouse": {
            "reachable": True,
            "target": "chdb:///x",
            "schema_version": 5,
            "rows": 120,
            "error": None,
        },
    }
    text = _text(render.status_view(answer))
    for expected in (
        "s1",
        "failed",
        "1.5m",
        "boom",
        "total lag 5",
        "DLQ depth 2",
        "schema version 5",
        "120 samples in timeseries_raw (exact)",
    ):
        assert expected in text
    answer["kafka"] = answer["kafka"] | {
        "reachable": False,
        "error": "Kafka at x unreachable",
        "partitions": [],
    }
    assert "Kafka at x unreachable" in _text(render.status_view(answer))
