"""Admin endpoints under ``/_sim/``: health, counters, faults, mode, point switches, clock, expected totals.

They are for the operator of a simulator (tests, benchmarks, ``streamer sim points``), not part of the
ACE API: no token, no faults.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from streamer.sim.catalog import catalog_of
from streamer.sim.model import enabled_mask, expected
from streamer.times import to_ms

if TYPE_CHECKING:
    from streamer.sim.server import SimState

_JSON = "application/json"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type=_JSON)


def _fail(status: int, detail: str) -> web.HTTPException:
    cls = {400: web.HTTPBadRequest, 404: web.HTTPNotFound}[status]
    return cls(text=orjson.dumps({"detail": detail}).decode(), content_type=_JSON)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise _fail(400, "body must be a JSON object") from None
    if not isinstance(data, dict):
        raise _fail(400, "body must be a JSON object")
    return data


def _site(state: SimState, site: Any) -> str:
    if not isinstance(site, str) or site not in state.overrides:
        raise _fail(404, f"site {site!r} not found")
    return site


class Admin:
    def __init__(self, state: SimState) -> None:
        self.state = state

    async def health(self, request: web.Request) -> web.Response:
        cfg = self.state.config
        return _json({"status": "ok", "sites": list(cfg.sites), "points": cfg.points, "seed": cfg.seed})

    async def stats(self, request: web.Request) -> web.Response:
        return _json({**self.state.stats, "faults": dict(self.state.faults.counts)})

    async def reset_stats(self, request: web.Request) -> web.Response:
        """Forget counters and per-request attempts (fault decisions start over)."""
        self.state.stats.clear()
        self.state.faults.reset()
        return _json({"status": "reset"})

    async def get_faults(self, request: web.Request) -> web.Response:
        return _json(self.state.faults.config.to_json())

    async def set_faults(self, request: web.Request) -> web.Response:
        """Partial update: only the given settings change."""
        try:
            config = self.state.faults.config.updated(await _body(request))
        except (ValueError, TypeError) as exc:
            raise _fail(400, str(exc)) from None
        unknown = sorted({x.site for x in config.late} - set(self.state.overrides))
        if unknown:
            raise _fail(400, f"late names unknown site(s): {', '.join(unknown)}")
        self.state.faults.config = config
        return _json(config.to_json())

    async def get_clock(self, request: web.Request) -> web.Response:
        fixed = self.state.fixed_now_ms
        return _json({"now": self.state.now_ms(), "fixed": fixed is not None})

    async def set_clock(self, request: web.Request) -> web.Response:
        """``{"now": T}`` (ISO 8601 or epoch ms) fixes the simulator's clock; ``{"now": null}`` frees it."""
        now = (await _body(request)).get("now")
        try:
            self.state.fixed_now_ms = None if now is None else to_ms(str(now))
        except ValueError as exc:
            raise _fail(400, str(exc)) from None
        return await self.get_clock(request)

    async def get_mode(self, request: web.Request) -> web.Response:
        mode = self.state.mode
        return _json({"order": mode.order, "repeat": mode.repeat, "empty_every": mode.empty_every})

    async def set_mode(self, request: web.Request) -> web.Response:
        changes = await _body(request)
        unknown = set(changes) - {"order", "repeat", "empty_every"}
        if unknown:
            raise _fail(400, f"unknown mode settings: {', '.join(sorted(unknown))}")
        try:
            self.state.set_mode(changes)
        except (ValueError, TypeError) as exc:
            raise _fail(400, str(exc)) from None
        return await self.get_mode(request)

    def _points_report(self, site: str) -> dict[str, Any]:
        cat = catalog_of(self.state.config, site)
        enabled = enabled_mask(cat, self.state.overrides[site])
        disabled = [n for j, n in enumerate(cat.names) if cat.configured[j] and not enabled[j]]
        return {"site": site, "configured": int(cat.configured.sum()), "disabled": disabled}

    async def get_points(self, request: web.Request) -> web.Response:
        return _json(self._points_report(_site(self.state, request.query.get("site"))))

    async def set_points(self, request: web.Request) -> web.Response:
        """``{"site": S, "disable": [...], "enable": [...]}``; names full or relative to the site."""
        data = await _body(request)
        site = _site(self.state, data.get("site"))
        cat = catalog_of(self.state.config, site)
        changes: dict[bool, list[str]] = {}
        for field, enabled in (("disable", False), ("enable", True)):
            names = data.get(field, [])
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise _fail(400, f"{field} must be a list of point names")
            full = [n if n.startswith(f"{site}/") else f"{site}/{n}" for n in names]
            unknown = [n for n in full if n not in cat.index or not cat.configured[cat.index[n]]]
            if unknown:
                raise _fail(404, f"not configured points of {site}: {', '.join(unknown[:10])}")
            changes[enabled] = full
        for enabled, names in changes.items():
            self.state.set_enabled(site, names, enabled)
        return _json(self._points_report(site))

    async def expected(self, request: web.Request) -> web.Response:
        """``expected()`` for a window, honouring the points switched at runtime; with ``visible=true``,
        what the API serves now (late samples that have not arrived left out)."""
        site = _site(self.state, request.query.get("site"))
        try:
            start_ms = to_ms(request.query["start"])
            end_ms = to_ms(request.query["end"])
        except KeyError:
            raise _fail(400, "start and end are required") from None
        except ValueError as exc:
            raise _fail(400, str(exc)) from None
        overrides = dict(self.state.overrides[site])
        visible = request.query.get("visible", "false").lower() in ("1", "true")
        hidden = self.state.faults.config.hidden(site, self.state.now_ms()) if visible else ()
        try:
            result = await asyncio.to_thread(
                expected, self.state.config, site, start_ms, end_ms, overrides, hidden=hidden
            )
        except ValueError as exc:  # e.g. times outside 2001..2286, where keys have other digit counts
            raise _fail(400, str(exc)) from None
        return _json(result)


def add_admin_routes(app: web.Application, state: SimState, prefix: str) -> None:
    admin = Admin(state)
    base = f"{prefix}/_sim"
    app.router.add_get(f"{base}/health", admin.health)
    app.router.add_get(f"{base}/stats", admin.stats)
    app.router.add_delete(f"{base}/stats", admin.reset_stats)
    app.router.add_get(f"{base}/faults", admin.get_faults)
    app.router.add_post(f"{base}/faults", admin.set_faults)
    app.router.add_get(f"{base}/mode", admin.get_mode)
    app.router.add_post(f"{base}/mode", admin.set_mode)
    app.router.add_get(f"{base}/points", admin.get_points)
    app.router.add_post(f"{base}/points", admin.set_points)
    app.router.add_get(f"{base}/expected", admin.expected)
    app.router.add_get(f"{base}/clock", admin.get_clock)
    app.router.add_post(f"{base}/clock", admin.set_clock)
