"""Attacks from a real headless Chromium on the query API while it runs on loopback without a token:
another site's page POSTing text/plain to /api/v1/sql, and DNS rebinding (Host: attacker.example).

The attacker's page is a tiny aiohttp app on a second port; the API records the status of every
answer it gave, so a request the page sent blind (no-cors) is still checked on the server side.
Needs Debian's chromium (the failure message says how to install it).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from streamer.settings import Settings
from tests.integration.query.cdp import Browser
from tests.integration.query.conftest import Data
from tests.security.conftest import RecordingServer

BLIND_POST = """
(async () => {
  await fetch("%(api)s/api/v1/sql", {method: "POST", mode: "no-cors",
    headers: {"Content-Type": "text/plain"}, body: "SELECT 'csrf' AS marker"});
  const image = new Image();
  const loaded = new Promise((done) => { image.onload = image.onerror = done; });
  image.src = "%(api)s/api/v1/sites?from=img";
  await loaded;
  return "sent";
})()
"""

READ_BACK = """
(async () => {
  const response = await fetch("%(path)s", %(options)s);
  return [response.status, await response.text()];
})()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def attacker_page(port: int) -> AsyncIterator[str]:
    """An empty page on 127.0.0.1:<port>: the other site whose scripts the test runs."""

    async def page(_: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><title>attacker</title><p>hi", content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _open(browser: Browser, url: str) -> None:
    await browser.open(url)
    await browser.wait_for(f"location.href.startsWith({url!r}) && document.readyState === 'complete'")


async def test_foreign_page_cannot_post_sql_or_embed_api_answers(
    store: tuple[Settings, Data], tmp_path: Path
) -> None:
    """A page on another port POSTs text/plain SQL (no-cors) and loads an API URL as an image: the API
    refuses both (403), it runs nothing."""
    with RecordingServer(store[0]) as api:
        async with attacker_page(_free_port()) as page_url, Browser(tmp_path / "profile") as browser:
            await _open(browser, page_url + "/")
            assert await browser.evaluate(BLIND_POST % {"api": api.url}) == "sent"
    assert api.statuses("POST", "/api/v1/sql") == [403]
    assert api.statuses("GET", "/api/v1/sites") == [403]


async def test_allowed_origin_reads_with_json_and_cors(store: tuple[Settings, Data], tmp_path: Path) -> None:
    """An origin listed in STREAMER_API_ALLOWED_ORIGINS gets its preflight and reads a JSON POST's
    answer; the same text/plain POST from it is still refused (415)."""
    page_port = _free_port()
    settings = store[0].model_copy(update={"api_allowed_origins": [f"http://127.0.0.1:{page_port}"]})
    with RecordingServer(settings) as api:
        async with attacker_page(page_port) as page_url, Browser(tmp_path / "profile") as browser:
            await _open(browser, page_url + "/")
            json_post = (
                '{method: "POST", headers: {"Content-Type": "application/json"}, '
                'body: JSON.stringify({sql: "SELECT 7 AS n"})}'
            )
            status, body = await browser.evaluate(
                READ_BACK % {"path": f"{api.url}/api/v1/sql", "options": json_post}
            )
            text_post = '{method: "POST", headers: {"Content-Type": "text/plain"}, body: "SELECT 7"}'
            refused, _ = await browser.evaluate(
                READ_BACK % {"path": f"{api.url}/api/v1/sql", "options": text_post}
            )
    assert status == 200 and '"rows":[[7]]' in body
    assert refused == 415
    assert api.statuses("OPTIONS", "/api/v1/sql") == [204]
    assert api.statuses("POST", "/api/v1/sql") == [200, 415]


async def test_dns_rebinding_gets_nothing(store: tuple[Settings, Data], tmp_path: Path) -> None:
    """attacker.example resolved to 127.0.0.1 (Chromium's host-resolver rules): the page at
    http://attacker.example:<port>/ and its same-origin fetch of /api/v1/sites get 403, no site name."""
    rules = ("--host-resolver-rules=MAP attacker.example 127.0.0.1", "--no-proxy-server")
    with RecordingServer(store[0]) as api:
        async with Browser(tmp_path / "profile", flags=rules) as browser:
            origin = f"http://attacker.example:{api.port}"
            await _open(browser, origin + "/")
            page = await browser.evaluate("document.body.innerText")
            status, body = await browser.evaluate(READ_BACK % {"path": "/api/v1/sites", "options": "{}"})
    assert status == 403 and "s1" not in body and "Host" in body
    assert '"status":403' in page and "s1" not in page
    assert api.statuses("GET", "/") == [403]
    assert api.statuses("GET", "/api/v1/sites") == [403]
