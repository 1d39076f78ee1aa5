"""``streamer sim``: serve the ACE API simulator, ask what a window holds, switch points and faults."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import orjson
from pydantic import SecretStr

from streamer.cli import warn_if_seconds
from streamer.runtime import tune_gc
from streamer.settings import Settings
from streamer.sim.config import ORDERS, WEATHER_SHAPES, FaultConfig, SimConfig, parse_gap, parse_sites
from streamer.times import to_ms

F = TypeVar("F", bound=Callable[..., Any])

_MODEL_OPTIONS = [
    click.option("--sites", default="1", show_default=True, help="A count (site_01..) or names, a,b."),
    click.option("--points", default=4583, show_default=True, help="Configured points per site."),
    click.option("--extra-share", default=0.10, show_default=True, help="Unconfigured points with samples."),
    click.option("--disabled-share", default=0.05, show_default=True, help="Points not collected."),
    click.option("--interval", default=60, show_default=True, help="Seconds between a point's samples."),
    click.option("--ms-phase-share", default=0.10, show_default=True, help="Points off whole seconds."),
    click.option("--string-share", default=0.10, show_default=True, help="Values sent as numeric strings."),
    click.option("--invalid-share", default=0.02, show_default=True, help="Values null, nan, inf or junk."),
    click.option(
        "--null-share", default=0.05, show_default=True, help="Points listed with nulls, per field."
    ),
    click.option("--seed", default=0, show_default=True, help="Seed of every name, phase and value."),
    click.option("--gap", "gaps", multiple=True, help="SITE/POINT@START..END (POINT may be *); repeatable."),
]
_FAULT_OPTIONS = [
    click.option("--fault-5xx", "rate_5xx", type=float, help="Share of requests answered 500/502/503/504."),
    click.option("--fault-429", "rate_429", type=float, help="Share of requests answered 429."),
    click.option("--retry-after", "retry_after_s", type=int, help="Retry-After of a 429, in seconds."),
    click.option("--retry-after-date-share", type=float, help="Share of 429s giving an HTTP date."),
    click.option("--fault-truncate", "rate_truncate", type=float, help="Share of bodies cut in half."),
    click.option("--fault-slow", "rate_slow", type=float, help="Share of responses delayed."),
    click.option("--slow-ms", type=int, help="Delay of a slow response."),
    click.option(
        "--unauthorized", "unauthorized_sites", multiple=True, help="Site answered 401; repeatable."
    ),
    click.option("--transfer-limit", type=int, help="Pages larger than this always break off mid-transfer."),
    click.option(
        "--short-points-pages", type=float, help="Share of configured-points pages missing half their items."
    ),
    click.option("--fault-seed", help="Seed of fault decisions, or 'random'."),
    click.option("--max-streak", type=int, help="Most failures in a row for one request."),
    click.option(
        "--late",
        "late",
        multiple=True,
        help="SITE[/POINT]@START..END+DELAY: that span's samples appear only once the simulator's clock "
        "passes END+DELAY (seconds); POINT may be *; repeatable.",
    ),
]


def _apply(options: list[Callable[[F], F]]) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _model_kwargs(kw: dict[str, Any]) -> dict[str, Any]:
    return {
        "seed": kw.pop("seed"),
        "sites": parse_sites(kw.pop("sites")),
        "points": kw.pop("points"),
        "extra_share": kw.pop("extra_share"),
        "disabled_share": kw.pop("disabled_share"),
        "interval_s": kw.pop("interval"),
        "ms_phase_share": kw.pop("ms_phase_share"),
        "string_share": kw.pop("string_share"),
        "invalid_share": kw.pop("invalid_share"),
        "null_share": kw.pop("null_share"),
        "gaps": tuple(parse_gap(g) for g in kw.pop("gaps")),
    }


def _fault_changes(kw: dict[str, Any]) -> dict[str, Any]:
    """The fault options given on the command line (None and empty mean "not given")."""
    names = ("rate_5xx", "rate_429", "retry_after_s", "retry_after_date_share", "rate_truncate", "rate_slow")
    changes = {
        n: kw.pop(n) for n in (*names, "slow_ms", "transfer_limit", "short_points_pages", "max_streak")
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    sites = kw.pop("unauthorized_sites")
    if sites:
        changes["unauthorized_sites"] = list(sites)
    late = kw.pop("late")
    if late:
        changes["late"] = list(late)
    seed = kw.pop("fault_seed")
    if seed is not None:
        changes["seed"] = None if seed == "random" else _int(seed, "--fault-seed")
    return changes


def _int(text: str, option: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an integer or 'random'", param_hint=option) from None


def _build(make: Callable[[], SimConfig]) -> SimConfig:
    try:
        return make()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _admin(url: str, method: str, path: str, **kwargs: Any) -> Any:
    import httpx

    root = url.rstrip("/")
    try:
        response = httpx.request(method, f"{root}/_sim/{path}", timeout=120, **kwargs)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"simulator at {root} unreachable: {exc}") from None
    if response.status_code != 200:
        raise click.ClickException(f"simulator said {response.status_code}: {response.text[:300]}")
    return response.json()


def _echo_json(data: Any) -> None:
    click.echo(orjson.dumps(data).decode())


@click.group(name="sim")
def sim() -> None:
    """ACE API simulator: serve it, ask what a window holds, switch points and faults at runtime."""


@sim.command()
@_apply(_MODEL_OPTIONS)
@_apply(_FAULT_OPTIONS)
@click.option("--host", help="Listen address (default: STREAMER_SIM_HOST).")
@click.option("--port", type=int, help="Listen port, 0 for any free one (default: STREAMER_SIM_PORT).")
@click.option("--order", type=click.Choice(ORDERS), default="interleaved", show_default=True)
@click.option("--repeat", default=3, show_default=True, help="Samples repeated across page boundaries.")
@click.option(
    "--empty-every",
    default=0,
    show_default=True,
    help="An empty page before data pages N, 2N, ... (0: never).",
)
@click.option("--weather-shape", type=click.Choice(WEATHER_SHAPES), default="alternate", show_default=True)
@click.option("--token", help="Bearer token to require (default: STREAMER_ACE_TOKEN, else dev-token).")
@click.option("--now", help="Fix the simulator's clock (ISO 8601 or epoch ms); change it with `sim clock`.")
@click.option(
    "--live", is_flag=True, help="Serve only samples whose time has passed by the clock (as a real API does)."
)
@click.pass_obj
def serve(
    settings: Settings,
    /,
    host: str | None,
    port: int | None,
    token: str | None,
    now: str | None,
    live: bool,
    **kw: Any,
) -> None:
    """Serve the simulated ACE API until SIGTERM or SIGINT. Prints its base URL on the first line."""
    model = _model_kwargs(kw)
    faults = _fault_changes(kw)
    secret = SecretStr(token) if token else settings.ace_token or SecretStr("dev-token")
    config = _build(lambda: SimConfig(**model, **kw, token=secret, faults=FaultConfig().updated(faults)))
    try:
        now_ms = to_ms(now) if now else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--now") from None
    warn_if_seconds(now or "", "--now")
    tune_gc()
    port = settings.sim_port if port is None else port
    asyncio.run(_serve(config, host or settings.sim_host, port, now_ms, live))


async def _serve(
    config: SimConfig, host: str, port: int, now_ms: int | None = None, live: bool = False
) -> None:
    from streamer.sim.server import SimServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with SimServer(config, host, port) as server:
        server.state.fixed_now_ms = now_ms
        server.state.live = live
        sys.stdout.write(server.url + "\n")
        sys.stdout.flush()
        await stop.wait()


@sim.command(name="expected")
@_apply(_MODEL_OPTIONS)
@click.option("--site", required=True, help="The site.")
@click.option("--start", required=True, help="Window start (inclusive): ISO 8601 or epoch ms.")
@click.option("--end", required=True, help="Window end (exclusive): ISO 8601 or epoch ms.")
@click.option("--url", help="Ask this running simulator (it knows the points switched at runtime).")
@click.option(
    "--visible",
    is_flag=True,
    help="With --url: what the simulator serves now (late samples not arrived yet left out).",
)
def expected_command(site: str, start: str, end: str, url: str | None, visible: bool, **kw: Any) -> None:
    """Print what a correct pipeline holds for a window, as JSON (see streamer.sim.model.expected).

    Late samples (--late) count as arrived: this is the final result. With --url --visible, what the
    running simulator serves at its clock's now.
    """
    try:
        start_ms, end_ms = to_ms(start), to_ms(end)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    warn_if_seconds(start, "--start")
    warn_if_seconds(end, "--end")
    if visible and not url:
        raise click.UsageError("--visible needs --url (only a running simulator has a clock)")
    if url:
        params = {"site": site, "start": start_ms, "end": end_ms, "visible": str(visible).lower()}
        _echo_json(_admin(url, "GET", "expected", params=params))
        return
    from streamer.sim.model import expected

    config = _build(lambda: SimConfig(**_model_kwargs(kw)))
    try:
        _echo_json(expected(config, site, start_ms, end_ms))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _default_url(settings: Settings, url: str | None) -> str:
    return url or f"http://{settings.sim_host}:{settings.sim_port}"


@sim.command()
@click.option("--site", required=True, help="The site.")
@click.option("--disable", multiple=True, help="Point to disable (full or relative name); repeatable.")
@click.option("--enable", multiple=True, help="Point to enable (full or relative name); repeatable.")
@click.option("--url", help="The running simulator (default: STREAMER_SIM_HOST:STREAMER_SIM_PORT).")
@click.pass_obj
def points(
    settings: Settings, /, site: str, disable: tuple[str, ...], enable: tuple[str, ...], url: str | None
) -> None:
    """Switch collect_enabled of points on a running simulator; prints the disabled points."""
    target = _default_url(settings, url)
    if disable or enable:
        body = {"site": site, "disable": list(disable), "enable": list(enable)}
        _echo_json(_admin(target, "POST", "points", json=body))
    else:
        _echo_json(_admin(target, "GET", "points", params={"site": site}))


@sim.command()
@click.option("--set", "now", help="Fix the clock at this instant (ISO 8601 or epoch ms).")
@click.option("--free", is_flag=True, help="Let the clock follow the system's again.")
@click.option("--url", help="The running simulator (default: STREAMER_SIM_HOST:STREAMER_SIM_PORT).")
@click.pass_obj
def clock(settings: Settings, /, now: str | None, free: bool, url: str | None) -> None:
    """Show or set a running simulator's clock (late samples arrive by it); prints it as JSON."""
    target = _default_url(settings, url)
    if now is not None and free:
        raise click.UsageError("--set and --free exclude each other")
    if now is not None or free:
        _echo_json(_admin(target, "POST", "clock", json={"now": now}))
    else:
        _echo_json(_admin(target, "GET", "clock"))


@sim.command()
@_apply(_FAULT_OPTIONS)
@click.option("--url", help="The running simulator (default: STREAMER_SIM_HOST:STREAMER_SIM_PORT).")
@click.pass_obj
def faults(settings: Settings, /, url: str | None, **kw: Any) -> None:
    """Change the faults of a running simulator (only the options given); prints the new settings."""
    changes = _fault_changes(kw)
    target = _default_url(settings, url)
    _echo_json(_admin(target, "POST", "faults", json=changes) if changes else _admin(target, "GET", "faults"))
