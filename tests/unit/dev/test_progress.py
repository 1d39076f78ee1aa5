"""`streamer dev` progress: figures of stopped parts kept, rates over busy time, stop signals."""

from __future__ import annotations

import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from streamer.dev.cli import StopRequests
from streamer.dev.progress import NEXT_CYCLE, InsertRate, Progress, next_poll, scrape

METRICS = b"# TYPE streamer_rows_inserted_total counter\nstreamer_rows_inserted_total 7.0\n"


class _Metrics(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(METRICS)

    def log_message(self, *args: object) -> None:
        pass


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_scrape_sums_live_parts_and_keeps_the_last_figures_of_stopped_ones() -> None:
    """A live part's metrics are read now; a stopped part (refused) counts with what it said last."""
    server = HTTPServer(("127.0.0.1", 0), _Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    live = f"http://127.0.0.1:{server.server_port}/metrics"
    stopped = f"http://127.0.0.1:{_closed_port()}/metrics"
    last = {stopped: {"streamer_samples_published_total": 120.0, "streamer_rows_inserted_total": 5.0}}
    try:
        progress = scrape([live, stopped], last)
    finally:
        server.shutdown()
    assert progress.get("streamer_rows_inserted_total") == 12.0
    assert progress.get("streamer_samples_published_total") == 120.0
    assert last[live] == {"streamer_rows_inserted_total": 7.0}


def test_insert_rate_counts_only_the_time_rows_arrived() -> None:
    """Idle seconds between polls do not dilute the rate: 1,000 rows in 2 busy seconds of 60 is 500/s."""
    rate = InsertRate()
    for at, inserted in [(0.0, 0.0), (1.0, 500.0), (2.0, 1000.0), (30.0, 1000.0), (60.0, 1000.0)]:
        rate.add(at, inserted)
    assert rate.while_inserting == 500.0
    assert rate.recent == 0.0  # nothing in the last 10 s


def test_next_poll_reads_the_producers_gauge() -> None:
    """The producer's next-cycle time shows as a countdown; 0 means a cycle runs; absent: unknown."""
    assert next_poll(Progress({NEXT_CYCLE: 112.0}), now=100.0) == "in 12 s"
    assert next_poll(Progress({NEXT_CYCLE: 0.0}), now=100.0) == "polling now"
    assert next_poll(Progress({}), now=100.0) == "-"


def test_a_signal_repeated_at_once_is_one_stop_request_a_later_one_aborts() -> None:
    """SIGINT then make's SIGTERM within the same moment stop gracefully; a Ctrl-C seconds later aborts."""
    requests = StopRequests(same_request_s=2.0)
    assert not requests.stop
    requests(signal.SIGINT, None)
    requests(signal.SIGTERM, None)
    assert requests.stop and not requests.abort
    requests.first = time.monotonic() - 3.0
    requests(signal.SIGINT, None)
    assert requests.abort
