"""A three-broker KRaft cluster of this test run (tools/kafka/kafka --brokers 3) and what tests ask of it.

The cluster runs on free ports and in a private data dir, beside the team's single broker on 9092,
which it never touches. Nodes are killed by their own pid (``kill``) and restarted by ``start``, which
starts only the nodes that are not running.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "tools/kafka/kafka"
BROKERS = 3


def free_base_port(span: int = 2 * BROKERS) -> int:
    """A port from which ``span`` consecutive ports are free now (env STREAMER_TEST_CLUSTER_PORT wins)."""
    if "STREAMER_TEST_CLUSTER_PORT" in os.environ:
        return int(os.environ["STREAMER_TEST_CLUSTER_PORT"])
    # Below the ephemeral range (32768+ here): outgoing connections never take a listener's port meanwhile.
    rng = random.Random()
    for _ in range(100):
        base = rng.randrange(20_000, 32_000 - span)
        if all(_free(base + i) for i in range(span)):
            return base
    raise RuntimeError("no run of free ports found")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Cluster:
    base_port: int
    data_dir: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_PORT": str(self.base_port),
            "KAFKA_DATA_DIR": str(self.data_dir),
            "KAFKA_BROKERS": str(BROKERS),
        }

    def port(self, node: int) -> int:
        return self.base_port + 2 * (node - 1)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port(n)}" for n in range(1, BROKERS + 1))

    def script(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), *args], env=self.env, capture_output=True, text=True, timeout=300, check=check
        )

    def start(self) -> None:
        """Start every node that is not running; returns when each one started is ready."""
        done = self.script("start", check=False)
        assert done.returncode == 0, done.stderr

    def stop(self) -> None:
        self.script("stop", check=False)

    def pid(self, node: int) -> int:
        return int((self.data_dir / f"node{node}" / "kafka.pid").read_text())

    def kill(self, node: int) -> None:
        """SIGKILL one node's JVM and wait until it is gone."""
        pid = self.pid(node)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(pid):
            assert time.monotonic() < deadline, f"node {node} (pid {pid}) survived SIGKILL"
            time.sleep(0.1)

    def controller(self) -> int:
        """The node id of the active KRaft controller."""
        return int(self.script("controller").stdout.strip())

    def log_files(self, node: int, topic: str) -> list[Path]:
        return sorted((self.data_dir / f"node{node}" / "logs").glob(f"{topic}-*/*.log"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (our child that exited) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


async def partition_leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """partition → leader node id, from fresh metadata."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        partitions = cluster.partitions_for_topic(topic) or set()
        return {p: int(cluster.leader_for_partition(TopicPartition(topic, p))) for p in partitions}
    finally:
        await consumer.stop()


async def describe(bootstrap: str, topics: list[str]) -> dict[str, list[dict[str, object]]]:
    """topic → its partitions as the metadata gives them (leader, replicas, isr)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {t["topic"]: t["partitions"] for t in await admin.describe_topics(topics)}
    finally:
        await admin.close()


async def until_fully_replicated(bootstrap: str, topics: list[str], timeout: float = 120) -> None:
    """Until every partition of ``topics`` has all three replicas in sync (a restarted node caught up)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            parts = [p for ps in (await describe(bootstrap, topics)).values() for p in ps]
            if parts and all(len(p["isr"]) == BROKERS for p in parts):  # type: ignore[arg-type]
                return
        except Exception:  # a node still joining: ask again
            pass
        assert time.monotonic() < deadline, f"{topics} not fully replicated after {timeout}s"
        await asyncio.sleep(0.5)


async def group_coordinator(bootstrap: str, group: str) -> int:
    """The node id of ``group``'s coordinator (the broker its commits go to)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return int(await admin.find_coordinator(group))
    finally:
        await admin.close()


_BATCH = re.compile(
    r"baseOffset: (\d+) lastOffset: (\d+) count: (\d+) baseSequence: (-?\d+) lastSequence: (-?\d+) "
    r"producerId: (-?\d+) producerEpoch: (-?\d+)"
)


def producer_batches(files: list[Path]) -> dict[str, list[tuple[int, int, int, int, int]]]:
    """Per log file (a partition): its batches as (producer id, epoch, first seq, last seq, base offset),
    read from the segment files by Kafka's own DumpLogSegments."""
    if not files:
        return {}
    cmd = ["java", "-cp", str(ROOT / "tools/kafka/libs/*"), "kafka.tools.DumpLogSegments"]
    done = subprocess.run(
        [*cmd, "--files", ",".join(map(str, files))], capture_output=True, text=True, timeout=300, check=True
    )
    out: dict[str, list[tuple[int, int, int, int, int]]] = {}
    current = ""
    for line in done.stdout.splitlines():
        if line.startswith("Dumping "):
            current = line.removeprefix("Dumping ").strip()
            out[current] = []
        elif m := _BATCH.search(line):
            base, _last, _count, first_seq, last_seq, pid, epoch = map(int, m.groups())
            out[current].append((pid, epoch, first_seq, last_seq, base))
    return out
