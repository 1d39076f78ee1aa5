"""The embedded engine starts with bounded caches, whichever of the process's handles reads them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from streamer.sink.client import EMBEDDED_ENGINE_OPTIONS

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
