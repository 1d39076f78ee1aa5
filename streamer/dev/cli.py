"""``streamer dev``: simulator, producer and processor together on one machine, with live progress.

Each part runs as its own process (the embedded ClickHouse admits one process per directory, and a crash
of one part must not take the others down); this module only starts them, watches their /metrics and stops
them. Settings reach the children as ``STREAMER_*`` variables; their output goes to ``DATA_DIR/logs/``
so it never tears the live table. On a terminal the table is redrawn live; otherwise a progress line is
printed every ``--progress-every`` seconds. The first stop signal stops the producer and lets the
processor drain; the same request arriving twice (``make`` forwards a SIGTERM after the terminal's
SIGINT) is one request; a second Ctrl-C after that aborts the drain.
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
from pathlib import Path
from typing import IO

import click
from pydantic import SecretStr
from rich.console import Console
from rich.live import Live

from streamer.dev.progress import InsertRate, line, render, scrape
from streamer.settings import Settings

SIM_TOKEN = "dev-token"


def _child_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}
    env.update(settings.to_env())
    return env


def _spawn(args: list[str], env: dict[str, str], out: IO[bytes]) -> subprocess.Popen[bytes]:
    # A session of its own: Ctrl-C reaches `streamer dev` only, which stops the producer first and
    # lets the processor drain, instead of every part stopping at once.
    return subprocess.Popen(
        [sys.executable, "-m", "streamer.cli", *args],
        env=env,
        start_new_session=True,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


class StopRequests:
    """Stop signals (SIGINT, SIGTERM, SIGHUP) as flags the main loop reads.

    The parts run in sessions of their own, so a `kill` or a closed terminal reaches only `streamer dev`,
    which must take them down. A second signal within ``same_request_s`` of the first is the same request
    delivered twice; a later one aborts the drain.
    """

    def __init__(self, same_request_s: float = 2.0) -> None:
        self.same_request_s = same_request_s
        self.first: float | None = None
        self.abort = False

    @property
    def stop(self) -> bool:
        return self.first is not None

    def __call__(self, signum: int, frame: object) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        elif now - self.first >= self.same_request_s:
            self.abort = True

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self)


def _stop_all(children: dict[str, subprocess.Popen[bytes]], timeout: float = 30) -> None:
    for proc in reversed(list(children.values())):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in children.values():
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def _processes(
    specs: dict[str, list[str]], env: dict[str, str], logs: Path
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    children: dict[str, subprocess.Popen[bytes]] = {}
    logs.mkdir(parents=True, exist_ok=True)
    try:
        for name, args in specs.items():
            with (logs / f"{name}.log").open("ab") as out:
                children[name] = _spawn(args, env, out)
            time.sleep(1.0)  # the simulator must listen before the producer's first call
        yield children
    finally:
        _stop_all(children)


def _wait_drained(settings: Settings, requests: StopRequests, timeout_s: float = 60.0) -> bool:
    """After the producer stopped: until the processor group committed everything published."""
    from streamer.query.kafka_status import KafkaProbe

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not requests.abort:
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


class Display:
    """The live table on a terminal; otherwise a progress line every ``every_s`` seconds."""

    def __init__(self, console: Console, every_s: float, headers: dict[str, str]) -> None:
        self.console = console
        self.headers = headers
        self.every_s = every_s
        self.rate = InsertRate()
        self.started = time.monotonic()
        self._printed = 0.0
        self._live = (
            Live(console=console, refresh_per_second=2, transient=False) if console.is_terminal else None
        )

    def __enter__(self) -> Display:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def update(
        self, urls: list[str], last: dict[str, dict[str, float]], children: dict[str, subprocess.Popen[bytes]]
    ) -> None:
        progress = scrape(urls, last, self.headers)
        now = time.monotonic()
        self.rate.add(now, progress.get("streamer_rows_inserted_total"))
        elapsed = now - self.started
        if self._live is not None:
            self._live.update(render(progress, self.rate, elapsed, children))
        elif now - self._printed >= self.every_s:
            self._printed = now
            text = line(progress, self.rate, elapsed, children)
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def final(
        self, urls: list[str], last: dict[str, dict[str, float]], children: dict[str, subprocess.Popen[bytes]]
    ) -> None:
        """The last figures, with every part's real end state, printed below everything else."""
        progress = scrape(urls, last, self.headers)
        self.rate.add(time.monotonic(), progress.get("streamer_rows_inserted_total"))
        self.console.print(render(progress, self.rate, time.monotonic() - self.started, children))


def _specs(settings: Settings, site_count: int, points: int, no_sim: bool) -> dict[str, list[str]]:
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
    return specs


def _drain(
    settings: Settings, children: dict[str, subprocess.Popen[bytes]], requests: StopRequests, show: Display
) -> None:
    """Stop the source first and let the processor drain, so a clean stop leaves nothing unstored."""
    show.say(
        "stopping: the producer first, then the processor stores what was published (up to 60 s); "
        "Ctrl-C again to abort"
    )
    _stop(children["producer"])
    if children["processor"].poll() is not None:
        return
    if _wait_drained(settings, requests):
        return
    if requests.abort:
        show.say("aborted: what was not stored yet stays in Kafka and is stored by the next processor run")
    else:
        show.say("processor did not drain in 60 s; stopping anyway (the rest is kept in Kafka)")


@click.command()
@click.option("--sites", "site_count", default=2, show_default=True, help="Simulated sites.")
@click.option("--points", default=4583, show_default=True, help="Configured points per simulated site.")
@click.option(
    "--duration", type=float, default=None, help="Stop after this many seconds (default: run until Ctrl-C)."
)
@click.option("--no-sim", is_flag=True, help="Do not start the simulator (use STREAMER_ACE_BASE_URL).")
@click.option(
    "--progress-every",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds between progress lines when the output is not a terminal.",
)
@click.pass_obj
def dev(
    settings: Settings,
    site_count: int,
    points: int,
    duration: float | None,
    no_sim: bool,
    progress_every: float,
) -> None:
    """Run simulator, producer and processor on this machine with the embedded ClickHouse."""
    settings = settings if no_sim else dev_settings(settings, site_count)
    env = _child_env(settings)
    urls = [
        f"http://127.0.0.1:{settings.processor_web_port}/metrics",
        f"http://127.0.0.1:{settings.producer_metrics_port}/metrics",
    ]
    console = Console(stderr=True)
    for step in (["topics"], ["migrate"]):
        if subprocess.run([sys.executable, "-m", "streamer.cli", *step], env=env).returncode != 0:
            raise click.ClickException(f"`streamer {step[0]}` failed; see the lines above")
    logs = settings.data_dir / "logs"
    last: dict[str, dict[str, float]] = {}
    requests = StopRequests()
    requests.install()
    show = Display(console, progress_every, _auth(settings))
    show.say(f"the parts' logs: {logs}/ (sim.log, processor.log, producer.log)")
    with _processes(_specs(settings, site_count, points, no_sim), env, logs) as children:
        with show:
            while not requests.stop and (duration is None or time.monotonic() - show.started < duration):
                show.update(urls, last, children)
                if all(p.poll() is not None for p in children.values()):
                    break
                time.sleep(1.0)
        _drain(settings, children, requests, show)
        if requests.abort:
            _stop_all(children, timeout=5)
    show.final(urls, last, children)
