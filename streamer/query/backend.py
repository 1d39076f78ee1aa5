"""Where the CLI gets its answers: the query service in-process (ClickHouse server), or the HTTP API
of the running processor (embedded ClickHouse: the engine admits one process per directory, so the
process that owns it answers for everyone)."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from streamer.errors import QueryError, StreamerError
from streamer.query.params import TimeRange
from streamer.settings import Settings

_ANY_HOST = {"0.0.0.0", "::", "[::]", ""}


class Backend(Protocol):
    async def samples(
        self, site: str, points: list[str], time_range: TimeRange, resolution: str
    ) -> dict[str, Any]: ...

    async def gaps(self, site: str, time_range: TimeRange, tolerance: float) -> dict[str, Any]: ...

    async def status(self) -> dict[str, Any]: ...

    async def completeness(self, site: str, time_range: TimeRange) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


class LocalBackend:
    """The query service in this process."""

    def __init__(self, settings: Settings) -> None:
        from streamer.query.service import QueryService

        self._service = QueryService(settings)

    async def samples(
        self, site: str, points: list[str], time_range: TimeRange, resolution: str
    ) -> dict[str, Any]:
        return await self._service.samples(site, points, time_range, resolution)

    async def gaps(self, site: str, time_range: TimeRange, tolerance: float) -> dict[str, Any]:
        return await self._service.gaps(site, time_range, tolerance)

    async def status(self) -> dict[str, Any]:
        return await self._service.status()

    async def completeness(self, site: str, time_range: TimeRange) -> dict[str, Any]:
        return await self._service.completeness(site, time_range)

    async def aclose(self) -> None:
        await self._service.close()


def candidate_urls(settings: Settings) -> list[str]:
    """``api_url`` when set; else the processor's web port, then the stand-alone API's port."""
    if settings.api_url:
        return [settings.api_url.rstrip("/")]
    host = "127.0.0.1" if settings.api_host in _ANY_HOST else settings.api_host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return [
        f"http://{host}:{port}" for port in dict.fromkeys((settings.processor_web_port, settings.api_port))
    ]


class RemoteBackend:
    """The HTTP API of a running processor or ``streamer api``."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        headers = {}
        if settings.api_token is not None:
            headers["Authorization"] = f"Bearer {settings.api_token.get_secret_value()}"
        self._urls = candidate_urls(settings)
        self._base: str | None = None
        self._http = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(60.0, connect=3.0), transport=transport
        )

    async def _find(self) -> str:
        if self._base is not None:
            return self._base
        for url in self._urls:
            try:
                response = await self._http.get(f"{url}/api/v1/openapi.json")
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                self._base = url
                return url
        raise StreamerError(
            f"no streamer query API answers at {' or '.join(self._urls)}: with the embedded ClickHouse, "
            "start `streamer processor` (or `streamer api`) first, or set STREAMER_API_URL"
        )

    async def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        base = await self._find()
        try:
            response = await self._http.get(f"{base}{path}", params=params)
        except httpx.HTTPError as exc:
            raise StreamerError(f"query API at {base} failed: {type(exc).__name__}: {exc}") from exc
        try:
            payload = response.json()
        except ValueError:
            raise StreamerError(f"query API at {base} answered {response.status_code} without JSON") from None
        if response.status_code >= 400:
            message = payload.get("error") if isinstance(payload, dict) else None
            raise QueryError(str(message or f"HTTP {response.status_code}"), status=response.status_code)
        if not isinstance(payload, dict):
            raise StreamerError(f"query API at {base} answered an unexpected shape")
        return payload

    async def samples(
        self, site: str, points: list[str], time_range: TimeRange, resolution: str
    ) -> dict[str, Any]:
        params = {"points": ",".join(points), "start": time_range.start_ms, "end": time_range.end_ms}
        return await self._get(
            f"/api/v1/sites/{quote(site, safe='')}/samples", params | {"resolution": resolution}
        )

    async def gaps(self, site: str, time_range: TimeRange, tolerance: float) -> dict[str, Any]:
        params = {"start": time_range.start_ms, "end": time_range.end_ms, "tolerance": tolerance}
        return await self._get(f"/api/v1/sites/{quote(site, safe='')}/gaps", params)

    async def status(self) -> dict[str, Any]:
        return await self._get("/api/v1/status", {})

    async def completeness(self, site: str, time_range: TimeRange) -> dict[str, Any]:
        params = {"start": time_range.start_ms, "end": time_range.end_ms}
        return await self._get(f"/api/v1/sites/{quote(site, safe='')}/completeness", params)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> RemoteBackend:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def make_backend(settings: Settings) -> Backend:
    if settings.is_embedded_clickhouse:
        return RemoteBackend(settings)
    return LocalBackend(settings)
