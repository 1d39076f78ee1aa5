"""Driving a real processor: simulator-made records, child processes, Kafka progress, ClickHouse reads.

The embedded ClickHouse admits one process per data directory, so the test process never opens it:
migrations and reads run in child processes (``streamer migrate``, ``python -c``), and a data directory
is read only after its processor exited.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from streamer.kafka import TopicReader, ensure_topics, group_offsets, reliable_producer
from streamer.settings import Settings
from streamer.sim.catalog import catalog_of
from streamer.sim.config import SimConfig
from streamer.sim.model import expected, window_samples, window_total
from streamer.sim.render import timeseries_body

START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
Record = tuple[bytes | None, bytes | None]

CHECK_SQL = """
SELECT count(), uniqExact(site, point, ts), sum(toInt64(round(value * 1000))),
       sum(crc32(concat(site, '/', point, '@', toString(toUnixTimestamp64Milli(ts)))))
FROM {db}.timeseries_raw FINAL
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def processor_settings(settings: Settings, data_dir: Path | None = None, **overrides: Any) -> Settings:
    """Settings for a test processor: own web port, short session timeout and batches."""
    update: dict[str, Any] = {
        "processor_web_port": free_port(),
        "processor_session_timeout_s": 6.0,
        "batch_max_s": 0.3,
        "log_level": "warning",
        **overrides,
    }
    if data_dir is not None:
        update["data_dir"] = data_dir
    return settings.model_copy(update=update)


def child_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}
    env.update(settings.to_env())
    return env


def streamer(settings: Settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a ``streamer`` subcommand to completion."""
    return subprocess.run(
        [sys.executable, "-m", "streamer.cli", *args],
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def prepare(settings: Settings) -> None:
    """Topics created, ClickHouse migrated (in a child process)."""
    await ensure_topics(settings)
    done = await asyncio.to_thread(streamer, settings, "migrate")
    assert done.returncode == 0, done.stderr


def start_processor(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streamer.cli", "processor"],
            env=child_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def clickhouse(settings: Settings, sql: str) -> list[list[Any]]:
    """Rows of ``sql`` against the data dir of ``settings``, read in a child process."""
    code = (
        "import sys, json, clickhouse_connect\n"
        "c = clickhouse_connect.get_client(dsn=sys.argv[1])\n"
        "print(json.dumps(c.query(sys.argv[2]).result_rows, default=str))\n"
    )
    url = settings.resolved_clickhouse_url
    done = subprocess.run([sys.executable, "-c", code, url, sql], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows: list[list[Any]] = json.loads(done.stdout)
    return rows


def check(settings: Settings) -> tuple[int, int, int, int]:
    """(count FINAL, distinct keys, value milli sum, key checksum) of timeseries_raw."""
    row = clickhouse(settings, CHECK_SQL.format(db=settings.clickhouse_database))[0]
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def want(config: SimConfig, start_ms: int, end_ms: int) -> tuple[int, int, int, int]:
    """What ``check`` must return for the simulator's window (configured, enabled, valid samples)."""
    totals = [expected(config, site, start_ms, end_ms)["valid"] for site in config.sites]
    count = sum(t["count"] for t in totals)
    return count, count, sum(t["value_milli_sum"] for t in totals), sum(t["key_checksum"] for t in totals)


def sample_records(config: SimConfig, start_ms: int, end_ms: int, per_record: int = 2000) -> list[Record]:
    """The window's samples as the producer publishes them: grouped by point, ``per_record`` at most."""
    out: list[Record] = []
    for site in config.sites:
        cat = catalog_of(config, site)
        samples = window_samples(
            config, site, start_ms, end_ms, "grouped", 0, window_total(config, cat, start_ms, end_ms)
        )
        by_point: dict[str, list[list[Any]]] = {}
        for s in orjson.loads(timeseries_body(cat, samples, None, False))["point_samples"]:
            by_point.setdefault(s["name"], []).append([s["time"], s["value"]])
        for point, pairs in by_point.items():
            for i in range(0, len(pairs), per_record):
                chunk = pairs[i : i + per_record]
                value = {"site": site, "point": point, "samples": chunk, "sync_id": "test"}
                out.append((f"{site}/{point}".encode(), orjson.dumps(value)))
    return out


def point_records(config: SimConfig, now_ms: int = START_MS) -> list[Record]:
    """ace.points for every configured point (disabled ones with collect_enabled false)."""
    out: list[Record] = []
    for site in config.sites:
        cat = catalog_of(config, site)
        for j, item in enumerate(cat.items):
            if not cat.configured[j]:
                continue
            value = {
                "site": site,
                "point": item["name"],
                "collect_enabled": bool(cat.default_enabled[j]),
                "point_type": item.get("point_type"),
                "marker_tags": item["marker_tags"] or [],  # null: empty, as the client reads it
                "kv_tags": item["kv_tags"] or {},
                "updated_at_ms": now_ms,
            }
            out.append((f"{site}/{item['name']}".encode(), orjson.dumps(value)))
    return out


async def produce(settings: Settings, topic: str, records: Iterable[Record]) -> int:
    """Publish ``records`` durably (acks=all); returns how many."""
    producer = reliable_producer(settings, client_id=f"{settings.kafka_client_id}-test")
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


async def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    async with TopicReader(settings, topic, client_suffix="test-ends") as reader:
        return {tp.partition: offset for tp, offset in (await reader.end_offsets()).items()}


async def committed(settings: Settings, topic: str) -> dict[int, int]:
    """The processor group's committed offsets on ``topic``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        offsets = await group_offsets(admin, settings.processor_app_id)
    finally:
        await admin.close()
    return {tp.partition: offset for tp, offset in offsets.items() if tp.topic == topic}


async def wait_consumed(
    settings: Settings, procs: list[subprocess.Popen[bytes]], timeout: float = 60, topic: str | None = None
) -> None:
    """Until the group committed every record of ``topic`` (default samples) that exists now."""
    topic = topic or settings.topic_samples
    ends = await end_offsets(settings, topic)
    deadline = time.monotonic() + timeout
    while True:
        done = await committed(settings, topic)
        if all(done.get(p, 0) >= end for p, end in ends.items()):
            return
        for proc in procs:
            assert proc.poll() is None, f"processor exited with {proc.returncode}"
        assert time.monotonic() < deadline, f"not consumed in {timeout}s: {done} < {ends}"
        await asyncio.sleep(0.25)


async def read_all(
    settings: Settings, topic: str
) -> list[tuple[bytes | None, bytes | None, dict[str, str], int]]:
    """Every record of ``topic`` now: key, value, headers, partition."""
    out: list[tuple[bytes | None, bytes | None, dict[str, str], int]] = []

    def take(messages: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        for m in messages:
            out.append((m.key, m.value, {k: v.decode() for k, v in m.headers or ()}, m.partition))

    async with TopicReader(settings, topic, client_suffix="test-read-all") as reader:
        await reader.read_to_end(take)
    return out


_DUMP = (
    "import sys, json, clickhouse_connect\n"
    "c = clickhouse_connect.get_client(dsn=sys.argv[1])\n"
    "q = 'SELECT site, point, toUnixTimestamp64Milli(ts), toInt64(round(value * 1000)) FROM ' + sys.argv[2]\n"
    "print(json.dumps(c.query(q + '.timeseries_raw FINAL').result_rows))\n"
)


def dump(settings: Settings) -> set[tuple[str, str, int, int]]:
    """Every row of one worker's store (read in a child process: one process per chdb directory)."""
    args = [sys.executable, "-c", _DUMP, settings.resolved_clickhouse_url, settings.clickhouse_database]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return {(s, p, int(t), int(v)) for s, p, t, v in json.loads(done.stdout)}


async def members(settings: Settings) -> int:
    """Members of the processor group once it is stable (0 while it rebalances)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([settings.processor_app_id])
    except GroupCoordinatorNotAvailableError:  # a broker just started has not elected it yet
        return 0
    finally:
        await admin.close()
    group = response.to_object()["groups"][0]
    return len(group["members"]) if group["state"] == "Stable" else 0


def union_totals(rows: set[tuple[str, str, int, int]]) -> tuple[int, int, int, int]:
    """What ``check`` would say of ``rows`` (the union of workers' ``dump``s), to compare with ``want``."""
    checksum = sum(zlib.crc32(f"{s}/{p}@{t}".encode()) for s, p, t, _ in rows)
    return len(rows), len(rows), sum(v for *_, v in rows), checksum


async def until_members(settings: Settings, count: int, timeout: float = 90) -> None:
    """Wait until the processor group is stable with ``count`` members."""
    deadline = time.monotonic() + timeout
    while await members(settings) != count:
        assert time.monotonic() < deadline, f"group never reached {count} stable members"
        await asyncio.sleep(0.2)
