"""Issue #15.1: a backfill through a three-broker cluster that loses a broker three times stays exact.

Simulator → ``streamer backfill`` (one producer process per site) → 3-broker KRaft Kafka → ``streamer
processor`` → embedded ClickHouse. While the backfill runs (the simulator answers slowly until the
three kills are done, so the backfill spans them), SIGKILL in turn: the broker leading most ace.samples
partitions, the active controller, and the processor group's coordinator while commits advance; each
restarts 20 s after its kill, and the next kill waits until every partition is fully replicated again.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from streamer.settings import Settings
from streamer.sim import SimConfig, expected
from tests.integration.cluster.cluster import (
    Cluster,
    describe,
    group_coordinator,
    partition_leaders,
    producer_batches,
    until_fully_replicated,
)
from tests.integration.processor import helpers as h
from tests.integration.producer.helpers import read_topic

pytestmark = pytest.mark.cluster

SITES = ("site_01", "site_02")
POINTS = 2000
HOURS = 6
START_MS = h.START_MS
END_MS = START_MS + HOURS * 3_600_000
RESTART_AFTER_S = 20

CHECK_SQL = (
    "SELECT count(), uniqExact(site, point, ts), sum(toInt64(round(value * 1000))), "
    "sum(crc32(concat(site, '/', point, '@', toString(toUnixTimestamp64Milli(ts))))) "
    "FROM {db}.timeseries_raw FINAL WHERE point NOT LIKE 'weather.%'"
)


def _want() -> tuple[int, int, int, int]:
    config = SimConfig(sites=SITES, points=POINTS)
    valid = [expected(config, site, START_MS, END_MS)["valid"] for site in SITES]
    count = sum(v["count"] for v in valid)
    return count, count, sum(v["value_milli_sum"] for v in valid), sum(v["key_checksum"] for v in valid)


async def _sim(port: int, log: Path) -> asyncio.subprocess.Process:
    args = ["sim", "serve", "--sites", ",".join(SITES), "--points", str(POINTS), "--port", str(port)]
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streamer.cli", *args, "--fault-slow", "1", "--slow-ms", "2500",
            stdout=out, stderr=out,
        )  # fmt: skip
    await _until_http(f"http://127.0.0.1:{port}/_sim/health", lambda: proc.returncode)
    return proc


async def _until_http(url: str, exited: Callable[[], int | None], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while True:
            assert exited() is None, f"{url}: its process exited with {exited()}"
            try:
                if (await client.get(url, timeout=2)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{url} not ready in {timeout}s"
            await asyncio.sleep(0.5)


async def _backfill(settings: Settings, site: str, log: Path) -> asyncio.subprocess.Process:
    args = ["backfill", "--site", site, "--start", str(START_MS), "--end", str(END_MS)]
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streamer.cli", *args, env=h.child_env(settings), stdout=out, stderr=out
        )


class Run:
    """The processes of one run, checked alive at every step."""

    def __init__(self, cluster: Cluster, settings: Settings, tmp: Path) -> None:
        self.cluster, self.settings, self.tmp = cluster, settings, tmp
        self.backfills: list[asyncio.subprocess.Process] = []
        self.processor: subprocess.Popen[bytes] | None = None
        self.kills: list[str] = []

    def alive(self) -> None:
        assert self.processor is not None and self.processor.poll() is None, self._tail("processor.log")
        for site, proc in zip(SITES, self.backfills, strict=True):
            assert proc.returncode is None, f"backfill {site} ended before the kills:\n{self._tail(site)}"

    def _tail(self, name: str) -> str:
        path = self.tmp / (name if name.endswith(".log") else f"backfill-{name}.log")
        return path.read_text()[-3000:] if path.exists() else ""

    async def committed(self) -> int:
        return sum((await h.committed(self.settings, self.settings.topic_samples)).values())

    async def kill_and_restart(self, node: int, what: str) -> None:
        self.alive()
        before = await h.end_offsets(self.settings, self.settings.topic_samples)
        self.cluster.kill(node)
        self.kills.append(f"{what}: node {node}")
        await asyncio.sleep(RESTART_AFTER_S)
        self.alive()  # the producers and the processor live through the loss
        # ... and the producers kept publishing to every partition, the dead node's too (new leaders).
        during = await h.end_offsets(self.settings, self.settings.topic_samples)
        stalled = [p for p, end in during.items() if end <= before[p]]
        assert stalled == [], f"{what} (node {node}) down: partitions {stalled} took no record"
        await asyncio.to_thread(self.cluster.start)
        topics = [self.settings.topic_samples, self.settings.topic_points, self.settings.topic_sync]
        await until_fully_replicated(self.cluster.bootstrap, topics)


async def test_backfill_through_three_broker_losses_is_exact_and_written_once(
    kafka_cluster: Cluster, base_settings: Settings, tmp_path: Path
) -> None:
    """Kill the ace.samples leader, then the active controller, then the group coordinator while the
    processor commits (each restarted 20 s later): ClickHouse equals expected() exactly, the DLQ is
    empty, no record or producer batch sequence was written twice within a producer session, and
    faust's own topics have three replicas too."""
    sim_port = h.free_port()
    settings = h.processor_settings(
        base_settings,
        kafka_bootstrap_servers=kafka_cluster.bootstrap,
        ace_base_url=f"http://127.0.0.1:{sim_port}/api",
        ace_token=SecretStr("dev-token"),
        sites=list(SITES),
        ace_page_size=10_000,
        ace_min_page_size=1_000,
        gather_max_samples=4_000,  # records leave with every page: the producer publishes all along
        producer_metrics_port=0,
        batch_max_rows=20_000,
    )
    sim = await _sim(sim_port, tmp_path / "sim.log")
    run = Run(kafka_cluster, settings, tmp_path)
    started = time.monotonic()
    try:
        await h.prepare(settings)
        described = await describe(kafka_cluster.bootstrap, [settings.topic_samples])
        assert {len(p["replicas"]) for p in described[settings.topic_samples]} == {3}  # type: ignore[arg-type]
        run.processor = h.start_processor(settings, tmp_path / "processor.log")
        await _until_http(f"http://127.0.0.1:{settings.processor_web_port}/health", run.processor.poll)
        run.backfills = [await _backfill(settings, s, tmp_path / f"backfill-{s}.log") for s in SITES]

        deadline = time.monotonic() + 120
        while await run.committed() == 0:  # data flows end to end before the first kill
            run.alive()
            assert time.monotonic() < deadline, "nothing committed"
            await asyncio.sleep(0.5)
        leaders = Counter((await partition_leaders(kafka_cluster.bootstrap, settings.topic_samples)).values())
        await run.kill_and_restart(leaders.most_common(1)[0][0], "ace.samples leader")
        await run.kill_and_restart(await asyncio.to_thread(kafka_cluster.controller), "active controller")
        before = await run.committed()
        while await run.committed() == before:  # the processor is committing right now
            run.alive()
            await asyncio.sleep(0.1)
        coordinator = await group_coordinator(kafka_cluster.bootstrap, settings.processor_app_id)
        await run.kill_and_restart(coordinator, "group coordinator")
        run.alive()

        async with httpx.AsyncClient() as client:  # the rest of the backfill at full speed
            await client.post(f"http://127.0.0.1:{sim_port}/_sim/faults", json={"rate_slow": 0.0})
        for site, proc in zip(SITES, run.backfills, strict=True):
            assert await asyncio.wait_for(proc.wait(), 600) == 0, run._tail(site)
        await h.wait_consumed(settings, [run.processor], timeout=600)
    finally:
        if run.processor is not None:
            assert h.stop(run.processor) == 0, run._tail("processor.log")
        for proc in run.backfills:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        sim.terminate()
        await sim.wait()
    print(f"\ncluster test: {time.monotonic() - started:.0f}s; kills: {run.kills}")

    got = h.clickhouse(settings, CHECK_SQL.format(db=settings.clickhouse_database))[0]
    assert tuple(int(v) for v in got) == _want()
    assert await h.read_all(settings, settings.topic_dlq) == []
    # faust's own topics (the points table's changelog, its leader topic) are replicated like ours.
    faust_topics = await _topics_named(kafka_cluster.bootstrap, settings.processor_app_id)
    assert faust_topics, "faust created no topic"
    replicas = await describe(kafka_cluster.bootstrap, faust_topics)
    assert {len(p["replicas"]) for ps in replicas.values() for p in ps} == {3}  # type: ignore[arg-type]
    records = await read_topic(settings, settings.topic_samples)
    # A window retried by the producer has a new sync_id: a byte-identical record is a duplicate write.
    repeats = [r for r, n in Counter((k, v) for k, v, _ in records).items() if n > 1]
    assert repeats == [], f"{len(repeats)} records written twice, e.g. {orjson.loads(repeats[0][1] or b'{}')}"
    _assert_no_sequence_written_twice(kafka_cluster, settings.topic_samples)


async def _topics_named(bootstrap: str, prefix: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.startswith(prefix))
    finally:
        await admin.close()


def _assert_no_sequence_written_twice(cluster: Cluster, topic: str) -> None:
    """What the idempotent producer guarantees, read from the log segments of every replica: within one
    producer id and epoch, each partition's batches cover each sequence number at most once."""
    for node in (1, 2, 3):
        files = cluster.log_files(node, topic)
        assert files, f"node {node} holds no segment of {topic}"
        batches = producer_batches(files)
        assert sum(len(b) for b in batches.values()) > 0
        for segment, found in batches.items():
            seen: dict[tuple[int, int], set[int]] = {}
            for pid, epoch, first, last, base in found:
                assert pid >= 0, f"{segment}@{base}: a batch without a producer id (not idempotent)"
                taken = seen.setdefault((pid, epoch), set())
                span = set(range(first, last + 1))
                assert not taken & span, f"{segment}@{base}: sequences {first}..{last} of {pid} written twice"
                taken |= span
