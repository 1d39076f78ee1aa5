"""`streamer dev` progress: a part that stopped answering keeps its last figures in the summary."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from streamer.processor.dev import _scrape

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
        progress = _scrape([live, stopped], last)
    finally:
        server.shutdown()
    assert progress.get("streamer_rows_inserted_total") == 12.0
    assert progress.get("streamer_samples_published_total") == 120.0
    assert last[live] == {"streamer_rows_inserted_total": 7.0}
