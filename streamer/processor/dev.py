"""``streamer dev``: simulator, producer and processor together on one machine, with live progress.

Each part runs as its own process (the embedded ClickHouse admits one process per directory, and a crash
of one part must not take the others down); this module only starts them, watches their /metrics and stops
them. Settings reach the children as ``STREAMER_*`` variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import click
import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from rich.console import Console
from rich.live import Live
from rich.table import Table

from streamer.settings import Settings

SIM_TOKEN = "dev-token"


@dataclass
class Progress:
    """Counters shown while the pipeline runs, summed over label values."""

    values: dict[str, float] = field(default_factory=dict)

    def get(self, name: str) -> float:
        return self.values.get(name, 0.0)


SHOWN = {
    "streamer_samples_fetched_total": "samples fetched from the API",
    "streamer_samples_published_total": "samples published to Kafka",
    "streamer_samples_dropped_total": "samples dropped (not configured / disabled)",
    "streamer_samples_rejected_total": "samples rejected (invalid)",
    "streamer_rows_inserted_total": "rows inserted into ClickHouse",
    "streamer_dlq_records_total": "records sent to the DLQ",
    "streamer_consumer_lag": "consumer lag (records)",
    "streamer_site_failures_total": "failed site cycles",
}


def parse_metrics(text: str) -> dict[str, float]:
    """Sum each shown metric over its label values (pure, so it is unit-tested)."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in SHOWN:
                sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    return sums


def _scrape(
    urls: list[str], last: dict[str, dict[str, float]], headers: dict[str, str] | None = None
) -> Progress:
    """Sum the children's metrics; a child that stopped answering keeps its last figures (so the
    summary printed after the producer stopped still counts what it did)."""
    progress = Progress()
    for url in urls:
        with contextlib.suppress(httpx.HTTPError):
            last[url] = parse_metrics(httpx.get(url, timeout=2.0, headers=headers).text)
        for name, value in last.get(url, {}).items():
            progress.values[name] = progress.values.get(name, 0.0) + value
    return progress


def _render(progress: Progress, started: float, children: dict[str, subprocess.Popen[bytes]]) -> Table:
    elapsed = max(time.monotonic() - started, 1e-6)
    table = Table(title=f"streamer dev — {elapsed:,.0f}s", show_header=True)
    table.add_column("what")
    table.add_column("value", justify="right")
    for name, label in SHOWN.items():
        table.add_row(label, f"{progress.get(name):,.0f}")
    inserted = progress.get("streamer_rows_inserted_total")
    table.add_row("insert rate (rows/s, average)", f"{inserted / elapsed:,.0f}")
    for part, proc in children.items():
        state = "running" if proc.poll() is None else f"exited {proc.returncode}"
        table.add_row(f"process {part}", state)
    return table


def _child_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}
    env.update(settings.to_env())
    return env


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A session of its own: Ctrl-C reaches `streamer dev` only, which stops the producer first and
    # lets the processor drain, instead of every part stopping at once.
    return subprocess.Popen([sys.executable, "-m", "streamer.cli", *args], env=env, start_new_session=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_terminate() -> None:
    """SIGTERM and SIGHUP stop `streamer dev` as Ctrl-C does. The parts run in sessions of their own,
    so a `kill` or a closed terminal reaches only `streamer dev`; it must take them down, not leave them
    running."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)


@contextlib.contextmanager
def _processes(
    specs: dict[str, list[str]], env: dict[str, str]
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, args in specs.items():
            children[name] = _spawn(args, env)
            time.sleep(1.0)  # the simulator must listen before the producer's first call
        yield children
    finally:
        for proc in reversed(list(children.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in children.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_drained(settings: Settings, timeout_s: float = 60.0) -> bool:
    """After the producer stopped: until the processor group committed everything published."""
    from streamer.query.kafka_status import KafkaProbe

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        snapshot = asyncio.run(KafkaProbe(settings, cache_s=0).snapshot())
        if snapshot["reachable"] and snapshot["total_lag"] == 0:
            return True
        time.sleep(1.0)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _auth(settings: Settings) -> dict[str, str]:
    """The children's /metrics want the token when one is configured."""
    if settings.api_auth_required and settings.api_token is not None:
        return {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}
    return {}


def dev_settings(settings: Settings, sites: int) -> Settings:
    """Point the pipeline at a local simulator unless an ACE URL was configured explicitly."""
    updates: dict[str, object] = {}
    if settings.ace_base_url.startswith("https://flightdeck.aceiot.cloud"):
        updates["ace_base_url"] = f"http://{settings.sim_host}:{settings.sim_port}/api"
        updates["ace_token"] = settings.ace_token or SecretStr(SIM_TOKEN)
        updates["sites"] = settings.sites or [f"site_{i:02d}" for i in range(1, sites + 1)]
    return settings.model_copy(update=updates)


@click.command()
@click.option("--sites", "site_count", default=2, show_default=True, help="Simulated sites.")
@click.option("--points", default=4583, show_default=True, help="Configured points per simulated site.")
@click.option(
    "--duration", type=float, default=None, help="Stop after this many seconds (default: run until Ctrl-C)."
)
@click.option("--no-sim", is_flag=True, help="Do not start the simulator (use STREAMER_ACE_BASE_URL).")
@click.pass_obj
def dev(settings: Settings, site_count: int, points: int, duration: float | None, no_sim: bool) -> None:
    """Run simulator, producer and processor on this machine with the embedded ClickHouse."""
    settings = settings if no_sim else dev_settings(settings, site_count)
    env = _child_env(settings)
    specs: dict[str, list[str]] = {}
    if not no_sim:
        specs["sim"] = [
            "sim",
            "serve",
            "--host",
            settings.sim_host,
            "--port",
            str(settings.sim_port),
            "--sites",
            str(site_count),
            "--points",
            str(points),
        ]
    specs["processor"] = ["processor"]
    specs["producer"] = ["producer"]
    urls = [
        f"http://127.0.0.1:{settings.processor_web_port}/metrics",
        f"http://127.0.0.1:{settings.producer_metrics_port}/metrics",
    ]
    console = Console(stderr=True)
    for step in (["topics"], ["migrate"]):
        if subprocess.run([sys.executable, "-m", "streamer.cli", *step], env=env).returncode != 0:
            raise click.ClickException(f"`streamer {step[0]}` failed; see the lines above")
    started = time.monotonic()
    last: dict[str, dict[str, float]] = {}
    headers = _auth(settings)
    _stop_on_terminate()
    with _processes(specs, env) as children, Live(console=console, refresh_per_second=2) as live:
        try:
            while duration is None or time.monotonic() - started < duration:
                live.update(_render(_scrape(urls, last, headers), started, children))
                if all(p.poll() is not None for p in children.values()):
                    break
                time.sleep(1.0)
        except KeyboardInterrupt:
            console.print("stopping…")
        # Stop the source first and let the processor drain, so a clean stop leaves nothing unstored.
        _stop(children["producer"])
        if children["processor"].poll() is None and not _wait_drained(settings):
            console.print("processor did not drain in 60 s; stopping anyway (the rest is kept in Kafka)")
        live.update(_render(_scrape(urls, last, headers), started, children))
