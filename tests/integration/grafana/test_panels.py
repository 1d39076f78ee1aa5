"""Every Grafana panel's query, as the plugin sends it, against ClickHouse holding real pipeline data.

One pipeline run for the module: simulator → `streamer producer` → Kafka → `streamer processor` into the
embedded ClickHouse, plus one undecodable record (a dead letter). The panels' SQL then runs, with the
template variables and the plugin's macros expanded (``macros.py``), under the read-only Grafana user's
profile settings (grafana/clickhouse-users.xml); the Prometheus panels' metrics are looked up in what the
running processor and producer served on /metrics.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from streamer.settings import Settings
from streamer.sim.config import SimConfig
from streamer.sim.server import SimServer
from tests.integration.grafana.macros import Range, render
from tests.integration.processor.helpers import (
    child_env,
    free_port,
    prepare,
    processor_settings,
    produce,
    start_processor,
    stop,
    wait_consumed,
)
from tests.isolation import isolated_settings

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[3]
GRAFANA = ROOT / "grafana"
RUN_SQL = Path(__file__).with_name("run_sql.py")
CH_TYPE = "grafana-clickhouse-datasource"
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
# Time ranges ending now (the producer's window is the last hour): each picks one table of the samples
# panel (raw up to a day, 5-minute rollups up to a week, hourly beyond).
RANGES = {"raw": 6 * HOUR_MS, "5m": 2 * DAY_MS, "1h": 8 * DAY_MS}


@dataclass
class Pipeline:
    settings: Settings
    now_ms: int
    metrics: str  # the processor's and the producer's /metrics, concatenated
    dlq_records: int


async def _scrape(
    url: str,
    wanted: tuple[str, ...],
    proc: subprocess.Popen[bytes],
    timeout: float,
    lines: tuple[str, ...] = (),
) -> str:
    """/metrics of a running process once it shows every metric of ``wanted`` and every line of ``lines``."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            assert proc.poll() is None, f"{url}: process exited with {proc.returncode}"
            try:
                text = (await client.get(url)).text
            except httpx.HTTPError:
                text = ""
            shown = all(re.search(rf"^{name}[{{ ]", text, re.M) for name in wanted)
            if shown and all(line in text.splitlines() for line in lines):
                return text
            assert time.monotonic() < deadline, f"{url} never showed {wanted}"
            await asyncio.sleep(0.5)


async def _run_pipeline(settings: Settings, logs: Path) -> Pipeline:
    await prepare(settings)
    config = SimConfig(sites=("site_a", "site_b"), points=150, seed=13)
    processor = start_processor(settings, logs / "processor.log")
    try:
        async with SimServer(config) as sim:
            producer_port = free_port()
            produced = settings.model_copy(
                update={
                    "ace_base_url": sim.url,
                    "ace_token": SecretStr("dev-token"),
                    "sites": ["site_a", "site_b"],
                    "initial_lookback_s": 3600,
                    "producer_metrics_port": producer_port,
                }
            )
            with (logs / "producer.log").open("ab") as out:
                producer = subprocess.Popen(
                    [sys.executable, "-m", "streamer.cli", "producer"],
                    env=child_env(produced),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            try:
                # The first cycle over (its next one scheduled): every site's window and sync run is
                # published. The sites panel shows each site's last run; stopping the producer once
                # any site had published left the other without one.
                wanted = (
                    "streamer_watermark_age_seconds",
                    "streamer_samples_published_total",
                    "streamer_producer_next_cycle_timestamp_seconds(?= [1-9])",
                )
                producer_metrics = await _scrape(
                    f"http://127.0.0.1:{producer_port}/metrics", wanted, producer, 120
                )
            finally:
                stop(producer)
        # One record the processor cannot decode: a dead letter, so the DLQ panel has data.
        await produce(settings, settings.topic_samples, [(b"site_a/bad", b"{not json")])
        await wait_consumed(settings, [processor], timeout=120)
        await wait_consumed(settings, [processor], timeout=120, topic=settings.topic_sync_runs)
        wanted = ("streamer_consumer_lag", "streamer_dlq_records_total", "streamer_freshness_seconds_bucket")
        # the DLQ's depth comes from Kafka (cached a few seconds): the dead letter shows within the wait
        processor_metrics = await _scrape(
            f"http://127.0.0.1:{settings.processor_web_port}/metrics",
            wanted,
            processor,
            60,
            ("streamer_dlq_depth 1.0",),
        )
    finally:
        assert stop(processor) == 0
    return Pipeline(settings, int(time.time() * 1000), producer_metrics + processor_metrics, 1)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[Pipeline]:
    """A real pipeline run into a private embedded ClickHouse, shared by the module's tests."""
    base = tmp_path_factory.mktemp("grafana")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = isolated_settings(prefix, base / "data", samples_partitions=2, sync_partitions=1)
    settings = processor_settings(settings.model_copy(update={"kafka_bootstrap_servers": kafka_bootstrap}))
    yield asyncio.run(_run_pipeline(settings, base))


def _reader_profile() -> dict[str, str]:
    """The read-only Grafana user's profile settings (grafana/clickhouse-users.xml)."""
    root = ET.parse(GRAFANA / "clickhouse-users.xml").getroot()
    (user,) = root.findall("users/*")
    profile = root.find(f"profiles/{user.findtext('profile')}")
    assert profile is not None
    return {child.tag: (child.text or "").strip() for child in profile if child.tag != "constraints"}


def _run(settings: Settings, queries: dict[str, str], session: dict[str, str]) -> dict[str, Any]:
    job = {
        "dsn": settings.resolved_clickhouse_url,
        "database": settings.clickhouse_database,
        "session": session,
        "queries": queries,
    }
    done = subprocess.run(
        [sys.executable, str(RUN_SQL)], input=json.dumps(job), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def _dashboards() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def _variables(pipeline: Pipeline, board: dict[str, Any], time_range: Range) -> dict[str, list[str]]:
    """Each variable's values: its query run with the variables before it; the first option, as Grafana
    picks on load, except the last multi-value one (the points), which takes three, as a user comparing
    points would (so the multi-value quoting is exercised)."""
    values: dict[str, list[str]] = {}
    listed = board["templating"]["list"]
    for variable in listed:
        sql = render(variable["query"], values, time_range)
        answer = _run(pipeline.settings, {"v": sql}, _reader_profile())["v"]
        assert "error" not in answer, f"variable {variable['name']}: {answer['error']}\n{sql}"
        options = [row[0] for row in answer["rows"]]
        assert options, f"variable {variable['name']} has no options:\n{sql}"
        values[variable["name"]] = (
            options[:3] if variable is listed[-1] and variable["multi"] else options[:1]
        )
    return values


def _panel_queries(pipeline: Pipeline, ranges: dict[str, int]) -> tuple[dict[str, str], dict[str, str]]:
    """Every ClickHouse target of every dashboard, rendered for each range: key -> SQL, key -> kind."""
    queries: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for name, board in _dashboards().items():
        for label, span in ranges.items():
            time_range = Range(pipeline.now_ms - span, pipeline.now_ms + 60_000)
            variables = _variables(pipeline, board, time_range)
            for panel in board["panels"]:
                for target in panel.get("targets", []):
                    if target["datasource"]["type"] != CH_TYPE:
                        continue
                    key = f"{name} / {panel['title']} / {target['refId']} / {label}"
                    queries[key] = render(target["rawSql"], variables, time_range)
                    kinds[key] = target["queryType"]
    return queries, kinds


@pytest.fixture(scope="module")
def answers(pipeline: Pipeline) -> tuple[dict[str, Any], dict[str, str]]:
    """Every panel's answer for each range, run once for the module."""
    queries, kinds = _panel_queries(pipeline, RANGES)
    return _run(pipeline.settings, queries, _reader_profile()), kinds


def test_every_clickhouse_panel_answers_with_rows(answers: tuple[dict[str, Any], dict[str, str]]) -> None:
    """Each ClickHouse panel's SQL, variables and macros expanded, runs under the read-only user's
    profile for every range and returns rows; a time-series panel's first column is its time, of a
    DateTime type, ascending (what the plugin's long-to-wide conversion needs)."""
    results, kinds = answers
    assert len(results) == len(kinds) > 0
    for key, answer in results.items():
        assert "error" not in answer, f"{key}: {answer.get('error')}"
        assert answer["row_count"] > 0, f"{key}: no rows"
        if kinds[key] == "timeseries":
            assert answer["columns"][0] == "time", key
            assert answer["types"][0].startswith(("DateTime", "DateTime64")), key
            assert answer["sorted_by_first"], f"{key}: not ordered by time"
            assert len(answer["columns"]) >= 2, key


def test_samples_panel_reads_the_table_the_range_calls_for(
    answers: tuple[dict[str, Any], dict[str, str]],
) -> None:
    """The samples panel returns raw samples for 6 h, 5-minute means for 2 days and hourly means for
    8 days: the buckets and means are exactly those of the raw rows it returned (the whole run lies in
    every range), and the resolution panel names the choice."""
    results, _ = answers
    rows = {label: results[f"site-points / Samples / A / {label}"]["rows"] for label in RANGES}
    raw = [(_utc(t), point, float(v)) for t, point, v in rows["raw"]]
    assert len(raw) == results["site-points / Samples / A / raw"]["row_count"] > 0
    assert any(t.second or t.minute % 5 for t, _, _ in raw)  # not bucketed
    for label, width in (("5m", 300), ("1h", 3600)):
        means: dict[tuple[datetime, str], list[float]] = {}
        for t, point, value in raw:
            start = datetime.fromtimestamp(int(t.timestamp()) // width * width, tz=UTC)
            means.setdefault((start, point), []).append(value)
        got = {(_utc(t), p): float(v) for t, p, v in rows[label]}
        assert set(got) == set(means), label
        for key, values in means.items():
            assert got[key] == pytest.approx(sum(values) / len(values)), (label, key)
    shown = {
        label: results[f"site-points / Resolution shown / A / {label}"]["rows"][0][0] for label in RANGES
    }
    assert shown == {"raw": "raw samples", "5m": "5-minute rollup (avg)", "1h": "1-hour rollup (avg)"}


def _utc(text: str) -> datetime:
    """A time as run_sql prints it (ClickHouse's UTC, without a zone)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_health_panels_see_the_run(
    pipeline: Pipeline, answers: tuple[dict[str, Any], dict[str, str]]
) -> None:
    """The sync-run panels count the producer's windows and the sites table lists both sites."""
    results, _ = answers
    sites = results["pipeline-health / Sites / A / raw"]
    assert [row[0] for row in sites["rows"]] == ["site_a", "site_b"]
    assert {row[4] for row in sites["rows"]} == {"ok"}
    runs = results["pipeline-health / Sync runs by status / A / raw"]["rows"]
    assert {row[1] for row in runs} == {"ok"} and sum(int(row[2]) for row in runs) >= 2


def test_prometheus_panels_use_metrics_the_pipeline_serves(pipeline: Pipeline) -> None:
    """Every metric a Prometheus panel queries is one the running processor or producer served, with
    every label the panel groups by or names in its legend; the DLQ metric counted the run's dead
    letter."""
    labels: dict[str, set[str]] = {}
    for name, tags in re.findall(r"^(streamer_\w+)(?:\{([^}]*)\})? ", pipeline.metrics, re.M):
        labels.setdefault(name, set()).update(re.findall(r"(\w+)=", tags))
    for board in _dashboards().values():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["type"] != "prometheus":
                    continue
                used = set(re.findall(r"\bstreamer_\w+", target["expr"]))
                assert used and used <= set(labels), f"{panel['title']}: {used - set(labels)}"
                grouped = {
                    g.strip() for by in re.findall(r"by \(([\w, ]+)\)", target["expr"]) for g in by.split(",")
                }
                grouped |= set(re.findall(r"\{\{(\w+)\}\}", target["legendFormat"]))
                have = set().union(*(labels[m] for m in used))
                assert grouped <= have, f"{panel['title']}: labels {grouped - have} not on {used}"
    dlq = re.findall(r"^streamer_dlq_records_total\{[^}]*\} (\S+)$", pipeline.metrics, re.M)
    assert sum(float(v) for v in dlq) == pipeline.dlq_records
    # the producer's registry carries the gauge too, never set there: the processor's is the depth
    depths = [float(v) for v in re.findall(r"^streamer_dlq_depth (\S+)$", pipeline.metrics, re.M)]
    assert max(depths) == pipeline.dlq_records


def test_reader_profile_settings_exist_in_the_engine(pipeline: Pipeline) -> None:
    """Every setting of the read-only profile is a ClickHouse setting, its grant parses, and under the
    profile (as the panels ran) a write is refused."""
    names = [*sorted(_reader_profile()), "max_execution_time"]
    root = ET.parse(GRAFANA / "clickhouse-users.xml").getroot()
    grant = root.findtext("users/*/grants/query")
    quoted = ", ".join(f"'{n}'" for n in names)
    queries = {
        "settings": f"SELECT name FROM system.settings WHERE name IN ({quoted}) ORDER BY name",
        "grant": f"SELECT formatQuery('{grant} TO grafana')",
    }
    answer = _run(pipeline.settings, queries, {})
    assert sorted({row[0] for row in answer["settings"]["rows"]}) == sorted(set(names))
    assert answer["grant"]["rows"][0][0].startswith("GRANT SELECT ON streamer.* TO grafana")
    write = {"write": "CREATE TABLE grafana_write_probe (a UInt8) ENGINE = Memory"}
    refused = _run(pipeline.settings, write, _reader_profile())["write"]
    assert "readonly" in refused.get("error", "").lower(), refused
