"""Runs SQL against an embedded ClickHouse directory in a process of its own (one process per chdb
directory, and the test process must stay free to open others): reads a JSON job on stdin, prints JSON.

Job: {"dsn": "chdb:///path", "database": "streamer", "session": {settings}, "queries": {key: sql}}.
Answer per key: {"columns", "types", "rows" (at most 5,000, as strings), "row_count", "sorted_by_first"}
or {"error"}.
The session settings are applied to the engine handle with ``readonly`` last (as streamer.query.readonly
does), so every query runs under them.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import clickhouse_connect


def main() -> None:
    job = json.load(sys.stdin)
    session = dict(job.get("session") or {})
    readonly = session.pop("readonly", None)
    if readonly is not None:
        session["readonly"] = readonly
    client = clickhouse_connect.get_client(dsn=job["dsn"], database=job["database"], settings=session)
    out: dict[str, Any] = {}
    for key, sql in job["queries"].items():
        try:
            result = client.query(sql)
        except Exception as exc:  # the test reports which panel's SQL failed and why
            out[key] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
            continue
        out[key] = {
            "columns": list(result.column_names),
            "types": [t.name for t in result.column_types],
            "rows": [[str(v) for v in row] for row in result.result_rows[:5000]],
            "row_count": result.row_count,
            "sorted_by_first": all(
                a[0] <= b[0] for a, b in zip(result.result_rows, result.result_rows[1:], strict=False)
            ),
        }
    client.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
