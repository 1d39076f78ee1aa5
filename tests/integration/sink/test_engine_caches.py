"""The embedded engine starts with bounded caches, whichever of the process's handles reads them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from streamer.sink.client import EMBEDDED_ENGINE_OPTIONS, EMBEDDED_MERGE_TREE_SETTINGS

# In a child process: the engine admits one data directory per process, and these tests share one.
CHILD = """
import json, sys
from streamer.settings import load_settings
from streamer.sink.client import acquire_client, release_client
from streamer.query.session import own_client

settings = load_settings(clickhouse_url=sys.argv[1])
sql = "SELECT name, value FROM system.server_settings WHERE name IN ({names})".format(
    names=", ".join(repr(n) for n in json.loads(sys.argv[2]))
)
sink = acquire_client(settings)
reader = own_client(settings)
print(json.dumps([dict(sink.query(sql).result_rows), dict(reader.query(sql).result_rows)]))
reader.close()
release_client(sink)
"""


def test_the_engine_caches_are_bounded_for_the_sink_and_the_query_service(tmp_path: Path) -> None:
    """Mark, index-mark, primary-index, query-condition and compiled-expression caches are capped
    (not ClickHouse's 5 GiB server defaults), as the sink's and the query service's handles see them."""
    names = sorted(EMBEDDED_ENGINE_OPTIONS)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, f"chdb://{tmp_path / 'ch'}", json.dumps(names)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    sink, reader = json.loads(done.stdout.strip().splitlines()[-1])
    assert sink == EMBEDDED_ENGINE_OPTIONS
    assert reader == EMBEDDED_ENGINE_OPTIONS
    assert all(int(v) <= 64 << 20 for v in sink.values())


# Outdated parts are made 300 at once (merges stopped while they are inserted, then one OPTIMIZE), and
# the table's cleanup pass comes every second: the child reports the engine's MergeTree settings and
# its thread count before the inserts and once the cleanup has removed them all.
CLEANUP_CHILD = """
import json, os, sys, time
from streamer.settings import load_settings
from streamer.sink.client import acquire_client, release_client

client = acquire_client(load_settings(clickhouse_url=sys.argv[1]))
names = json.loads(sys.argv[2])
merge_tree = dict(client.query(
    "SELECT name, value FROM system.merge_tree_settings WHERE name IN {names:Array(String)}",
    parameters={"names": names},
).result_rows)
client.command(
    "CREATE TABLE t (k UInt64) ENGINE = MergeTree ORDER BY k SETTINGS cleanup_delay_period = 1, "
    "max_cleanup_delay_period = 1, cleanup_delay_period_random_add = 0, old_parts_lifetime = 0"
)
threads = len(os.listdir("/proc/self/task"))
client.command("SYSTEM STOP MERGES t")
for i in range(300):
    client.command(f"INSERT INTO t VALUES ({i})")
client.command("SYSTEM START MERGES t")
client.command("OPTIMIZE TABLE t FINAL")
outdated = -1
for _ in range(600):
    outdated = int(client.command("SELECT count() FROM system.parts WHERE table = 't' AND NOT active"))
    if outdated == 0:
        break
    time.sleep(0.1)
print(json.dumps([merge_tree, threads, len(os.listdir("/proc/self/task")), outdated]))
release_client(client)
"""


def test_the_engine_removes_outdated_parts_without_a_pool_of_threads(tmp_path: Path) -> None:
    """The embedded engine reads its MergeTree settings from its config file, and removing hundreds
    of outdated parts at once leaves no pool of idle threads behind (ClickHouse's default hands them
    to 128 threads that stay in the process: ~30 MB of RSS in one step)."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CLEANUP_CHILD,
            f"chdb://{tmp_path / 'ch'}",
            json.dumps(sorted(EMBEDDED_MERGE_TREE_SETTINGS)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    merge_tree, before, after, outdated = json.loads(done.stdout.strip().splitlines()[-1])
    assert merge_tree == EMBEDDED_MERGE_TREE_SETTINGS
    assert outdated == 0
    assert after - before < 16, f"{after - before} threads more after the cleanup"
