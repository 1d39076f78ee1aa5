"""The embedded engine is the `embedded` extra: without chdb, a chdb:// URL fails with one line saying so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streamer.errors import ConfigError
from streamer.settings import load_settings
from streamer.sink.client import acquire_client, require_embedded_engine

HINT = "pip install 'streamer[embedded]'"


def test_chdb_url_without_chdb_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without chdb, opening chdb:// raises ConfigError naming the extra; a server URL does not need it."""
    monkeypatch.setitem(sys.modules, "chdb", None)  # what `import chdb` sees when it is not installed
    embedded = load_settings(clickhouse_url=f"chdb://{tmp_path / 'ch'}")
    with pytest.raises(ConfigError, match=r"embedded ClickHouse engine .* is not installed: pip install"):
        acquire_client(embedded)
    with pytest.raises(ConfigError, match=HINT.replace("[", r"\[").replace("]", r"\]")):
        require_embedded_engine(embedded)
    require_embedded_engine(load_settings(clickhouse_url="http://clickhouse.invalid:8123"))


@pytest.mark.parametrize("command", ["migrate", "processor", "api"])
def test_commands_without_chdb_fail_with_one_line(command: str, tmp_path: Path) -> None:
    """`streamer migrate|processor|api` on the embedded default without chdb: exit 2, one line, the hint."""
    blocker = tmp_path / "blocker" / "chdb"
    blocker.mkdir(parents=True)
    missing = "raise ModuleNotFoundError(\"No module named 'chdb'\", name='chdb')\n"
    (blocker / "__init__.py").write_text(missing)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(blocker.parent),
        "STREAMER_DATA_DIR": str(tmp_path / "data"),
        "STREAMER_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",  # never reached
        "STREAMER_API_PORT": "1",
        "STREAMER_PROCESSOR_WEB_PORT": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "streamer.cli", command],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and HINT in lines[0], done.stderr
