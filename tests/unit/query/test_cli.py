"""User errors of the query commands end in one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from streamer.cli import main


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STREAMER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STREAMER_API_URL", f"http://127.0.0.1:{_free_port()}")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return int(info.value.code or 0), err


def test_query_with_a_bad_time_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """--start garbage: exit 1 and a line naming the parameter and the accepted forms."""
    code, err = _run(["query", "--site", "s", "--points", "a", "--start", "garbage"], capsys)
    assert code == 1
    assert err.strip().splitlines() == [
        "streamer: QueryError: start='garbage' is not a time: send epoch milliseconds, ISO 8601 "
        "(2024-01-01T00:00:00Z), 'now' or relative like -6h, -7d"
    ]


def test_gaps_with_start_after_end_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """--start after --end: exit 1, the message says to swap them."""
    code, err = _run(["gaps", "--site", "s", "--start", "2000", "--end", "1000"], capsys)
    assert code == 1 and "swap them" in err and len(err.strip().splitlines()) == 1


def test_status_without_a_running_api_says_what_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    """Embedded ClickHouse and nothing listening: exit 1, the line names the URL and the fix."""
    code, err = _run(["status"], capsys)
    assert code == 1 and "no streamer query API answers" in err and "STREAMER_API_URL" in err


def test_api_on_a_public_address_without_token_refuses(capsys: pytest.CaptureFixture[str]) -> None:
    """streamer api --host 0.0.0.0 without STREAMER_API_TOKEN: exit 2 (a setting), naming the setting."""
    code, err = _run(["api", "--host", "0.0.0.0"], capsys)
    assert code == 2 and "STREAMER_API_TOKEN" in err


def test_query_with_epoch_seconds_warns_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """--start 17961 looks like epoch seconds: a warning line on stderr, and the command goes on."""
    code, err = _run(["query", "--site", "s", "--points", "a", "--start", "17961"], capsys)
    lines = err.strip().splitlines()
    assert lines[0].startswith("warning: start=17961 is read as epoch milliseconds, 1970-01-01T00:00:17.961Z")
    assert code == 1 and "no streamer query API answers" in lines[1]  # it went on to ask the API
