"""The page's views in headless Chromium: URL state, pickers and typed times, the range fitted to the
data, zoom by dragging (and Back), hover values, one y-axis per unit, a wrapping legend, the first
rollup bucket at the axis, errors that echo the input, the range's completeness.

Assertions read the page's state (#chart's data attributes, window.streamerChart, the controls, the
URL) against the API's own answers. Screenshots go to the test's tmp dir; STREAMER_UPDATE_SCREENSHOT=1
also copies them to docs/ (page-*.png, the chart panel only, so they stay small).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from streamer.settings import Settings
from streamer.sink.rows import PointRow
from streamer.sink.writer import Sink
from tests.integration.query.cdp import Browser
from tests.integration.query.conftest import MINUTE, SPAN_MIN, T0, Data, LiveServer

DOCS = Path(__file__).resolve().parents[3] / "docs"
START, END = T0, T0 + SPAN_MIN * MINUTE
HOUR = 60 * MINUTE
MANY = 24  # points of site s3, three units, long names: the legend must wrap
DRAWN = "document.getElementById('chart').dataset.state === 'drawn'"
COMPLETENESS = "document.getElementById('completeness').dataset.completeness !== undefined"


def iso(ms: int) -> str:
    """As the page writes times (Times.iso): no milliseconds when there are none."""
    text = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z").replace(".000Z", "Z")


def picker(ms: int) -> str:
    """A datetime-local input's value of ``ms`` (UTC): the browser drops zero seconds."""
    text = iso(ms)[:19]
    return text[:16] if text.endswith(":00") else text


@pytest.fixture(scope="module")
def live_views(filled: tuple[Settings, Data]) -> Iterator[LiveServer]:
    """The filled store plus a site s3 of MANY points in three units, served live."""
    settings = filled[0]
    units = ("degF", "%", "kW")
    names = [f"s3/building_a/air_handler_{i:02d}/supply_air_temperature_sensor" for i in range(MANY)]
    with Sink(settings) as sink:
        sink.insert_points(
            [
                PointRow(site="s3", point=n, version=1, collect_interval=60, unit=units[i % 3])
                for i, n in enumerate(names)
            ]
        )
        for i, name in enumerate(names):
            ts = [T0 + k * MINUTE for k in range(60)]
            sink.insert_samples(
                ["s3"] * 60, [name] * 60, ts, [float(i * 10 + k % 5) for k in range(60)], f"s3/{i}"
            )
    with LiveServer(settings) as server:
        yield server


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    async with Browser(tmp_path / "profile") as b:
        yield b
        assert b.errors == [], b.errors  # no uncaught error or console.error on any page


async def open_page(browser: Browser, url: str) -> None:
    await browser.open(url)
    await browser.wait_for("document.body !== null && document.body.dataset.ready === '1'")


async def page_state(browser: Browser) -> dict[str, Any]:
    """What the page shows: the URL's query, the controls, and the chart's state."""
    state: dict[str, Any] = await browser.evaluate(
        """(() => {
          const chart = document.getElementById('chart');
          const v = (id) => document.getElementById(id).value;
          return {search: location.search, range: v('range'), start: v('start'), end: v('end'),
            startPicker: v('start-picker'), endPicker: v('end-picker'), resolution: v('resolution'),
            startAt: document.getElementById('start-at').textContent,
            endAt: document.getElementById('end-at').textContent,
            checked: [...document.querySelectorAll('#points input:checked')].map(b => b.value),
            state: chart.dataset.state, xMin: Number(chart.dataset.xMin), xMax: Number(chart.dataset.xMax),
            series: JSON.parse(chart.dataset.series), shown: window.streamerChart || null,
            error: document.getElementById('chart-error').hidden ? null
              : document.getElementById('chart-error').textContent,
            urlError: document.getElementById('url-error').hidden ? null
              : document.getElementById('url-error').textContent};
        })()"""
    )
    state["query"] = {k: v[0] for k, v in parse_qs(urlsplit(state["search"]).query).items()}
    return state


def samples(live: LiveServer, site: str, **params: Any) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{live.url}/api/v1/sites/{site}/samples", params=params).json()
    return answer


def keep(path: Path, name: str) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("STREAMER_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(path, DOCS / name)


async def test_a_shared_url_opens_the_same_view(live_views: LiveServer, browser: Browser) -> None:
    """A URL with site, points, a custom range and a resolution draws exactly that view, one y-axis per
    unit labelled with it; range=6h and range=3h are honoured as relative ranges; a bad range=, an
    unknown site or point are quoted in the page's note on the URL."""
    url = (
        f"{live_views.url}/?site=s1&points=temp,fan&range=custom&start={iso(START)}&end={END}&resolution=raw"
    )
    await open_page(browser, url)
    await browser.wait_for(DRAWN)
    state = await page_state(browser)
    api = samples(live_views, "s1", points="temp,fan", start=START, end=END, resolution="raw")
    assert (state["range"], state["start"], state["end"], state["resolution"]) == (
        "custom",
        iso(START),
        str(END),
        "raw",
    )
    assert sorted(state["checked"]) == ["fan", "temp"]
    assert state["query"] == {"site": "s1", "points": "temp,fan", "range": "custom", "start": iso(START),
                              "end": str(END), "resolution": "raw"}  # fmt: skip
    assert [(s["point"], s["count"]) for s in state["series"]] == [("temp", SPAN_MIN), ("fan", SPAN_MIN)]
    assert state["shown"]["bands"] == 0  # raw samples have no min..max
    assert state["shown"]["series"][0]["data"] == [
        [r["timestamp"], r["value"]] for r in api["rows"] if r["point_name"] == "temp"
    ]
    assert state["shown"]["axes"] == [
        {"unit": "degF", "side": "left", "points": ["temp"]},
        {"unit": "%", "side": "right", "points": ["fan"]},
    ]
    labels = await browser.evaluate("document.getElementById('chart').plot.axes.slice(1).map(a => a.label)")
    assert labels == ["degF", "%"]
    assert (state["startPicker"], state["endAt"]) == (picker(START), "= " + iso(END))

    await open_page(browser, f"{live_views.url}/?site=s1&points=fan&range=6h")
    await browser.wait_for(DRAWN)
    state = await page_state(browser)
    assert (state["range"], state["start"], state["end"]) == ("6h", "-6h", "now")
    assert state["shown"]["end"] - state["shown"]["start"] == 6 * HOUR  # the data is of 2023: none here
    assert state["series"] == [{"point": "fan", "count": 0, "first": None, "last": None}]

    await open_page(browser, f"{live_views.url}/?site=s1&points=fan&range=3h")
    await browser.wait_for(DRAWN)
    state = await page_state(browser)
    assert (state["range"], state["start"]) == ("3h", "-3h")
    assert state["shown"]["end"] - state["shown"]["start"] == 3 * HOUR

    await open_page(browser, f"{live_views.url}/?site=s1&points=fan&range=fortnight")
    await browser.wait_for(DRAWN)
    state = await page_state(browser)
    assert state["range"] == "data" and state["urlError"] is not None and '"fortnight"' in state["urlError"]

    await open_page(browser, f"{live_views.url}/?site=nowhere&points=temp,nope")
    await browser.wait_for(DRAWN)
    state = await page_state(browser)
    assert state["checked"] == ["temp"] and [s["point"] for s in state["series"]] == ["temp"]
    assert state["urlError"] == (
        'In the URL: site "nowhere" is not a known site; point(s) "nope" not in site s1.'
    ), state["urlError"]


async def test_default_range_is_fitted_to_the_data(live_views: LiveServer, browser: Browser) -> None:
    """Without a range the page shows the day up to the site's newest sample (not the last 24 h of the
    clock, empty for data of 2023), its x-axis fitted to the samples present."""
    await open_page(browser, f"{live_views.url}/?site=s1&points=temp")
    await browser.wait_for(DRAWN)
    state = await page_state(browser)
    temp = samples(live_views, "s1", points="temp", start=START, end=END)["rows"]
    last = max(r["timestamp"] for r in temp)
    end = -(-(last + 1) // MINUTE) * MINUTE
    assert (state["range"], state["start"], state["end"]) == ("data", iso(end - 24 * HOUR), iso(end))
    assert state["query"] == {"site": "s1", "points": "temp", "range": "data"}
    assert state["series"][0]["count"] == SPAN_MIN
    assert (state["xMin"], state["xMax"]) == (temp[0]["timestamp"], last)


async def test_pickers_and_typed_times(live_views: LiveServer, browser: Browser, tmp_path: Path) -> None:
    """The start picker writes an ISO time into the field; a typed epoch-ms end is previewed; Draw
    draws that range and puts it in the URL; a typed time the API cannot read, a start after the end
    and a time past what a JavaScript Date holds give errors quoting what was typed."""
    await open_page(browser, f"{live_views.url}/?site=s1&points=temp")
    await browser.wait_for(DRAWN)
    picked, typed_end = START + HOUR, START + 2 * HOUR
    await browser.evaluate(
        f"""(() => {{
          const picker = document.getElementById('start-picker');
          picker.value = '{iso(picked)[:19]}'; picker.dispatchEvent(new Event('change'));
          const end = document.getElementById('end');
          end.value = '{typed_end}'; end.dispatchEvent(new Event('input'));
          return true;
        }})()"""
    )
    state = await page_state(browser)
    assert (state["range"], state["start"], state["end"]) == ("custom", iso(picked), str(typed_end))
    assert (state["startAt"], state["endAt"], state["endPicker"]) == (
        "= " + iso(picked),
        "= " + iso(typed_end),
        picker(typed_end),
    )
    await browser.evaluate("document.getElementById('draw').click()")
    await browser.wait_for(DRAWN + " && window.streamerChart.start === " + str(picked))
    state = await page_state(browser)
    assert state["query"] == {
        "site": "s1",
        "points": "temp",
        "range": "custom",
        "start": iso(picked),
        "end": str(typed_end),
    }
    assert (state["shown"]["start"], state["shown"]["end"], state["series"][0]["count"]) == (
        picked,
        typed_end,
        60,
    )
    await browser.screenshot(tmp_path / "pickers.png", "#chart-panel")
    keep(tmp_path / "pickers.png", "page-pickers.png")

    for start, end, quoted in [
        ("yesterday-ish", "now", '"yesterday-ish"'),
        ("-6h", "-8h", 'start "-6h", end "-8h"'),
        ("-1h", "9999999999999999", 'end "9999999999999999"'),  # past what a JS Date holds
    ]:
        await browser.evaluate(
            f"""(() => {{
              document.getElementById('start').value = {json.dumps(start)};
              document.getElementById('end').value = {json.dumps(end)};
              document.getElementById('draw').click(); return true;
            }})()"""
        )
        await browser.wait_for("document.getElementById('chart').dataset.state === 'error'")
        state = await page_state(browser)
        assert quoted in state["error"], state["error"]
        if end == "9999999999999999":
            assert state["endAt"] == "= out of range"
        await browser.evaluate("document.getElementById('chart').dataset.state = 'reset'")


async def test_zoom_by_dragging_then_back(live_views: LiveServer, browser: Browser, tmp_path: Path) -> None:
    """Dragging across the plot draws the selected span (a new URL, exactly the API's rows of it);
    hovering shows the values in the legend; Back returns to the wider view; a double-click zooms out
    to twice the span around the same middle."""
    wide = f"/?site=s1&points=temp,fan&range=custom&start={START}&end={END}"
    await open_page(browser, live_views.url + wide)
    await browser.wait_for(DRAWN)
    over = await browser.evaluate(
        "(() => { const r = document.querySelector('#chart .u-over').getBoundingClientRect();"
        " return [r.left, r.top, r.width, r.height]; })()"
    )
    left, top, width, height = over
    await browser.mouse("mouseMoved", left + width / 2, top + height / 2)
    legend = await browser.wait_for(
        "(() => { const v = [...document.querySelectorAll('#chart .u-legend .u-value')]"
        ".map(e => e.textContent); return v.length === 3 && v.every(t => t && t !== '–') && v; })()"
    )
    assert legend[0].startswith("2023-11-14T") and float(legend[1]) > 60 and float(legend[2]) > 30

    await browser.drag((left + width * 0.25, top + height / 2), (left + width * 0.5, top + height / 2))
    await browser.wait_for(
        DRAWN + " && location.search.includes('range=custom') && window.streamerChart.start > " + str(START)
    )
    zoomed = await page_state(browser)
    start, end = zoomed["shown"]["start"], zoomed["shown"]["end"]
    span = END - START
    assert abs(start - (START + span * 0.25)) < span * 0.02 and abs(end - (START + span * 0.5)) < span * 0.02
    assert (zoomed["query"]["start"], zoomed["query"]["end"]) == (iso(start), iso(end))
    assert (zoomed["start"], zoomed["end"], zoomed["xMin"], zoomed["xMax"]) == (
        iso(start),
        iso(end),
        start,
        end,
    )
    api = samples(live_views, "s1", points="temp,fan", start=start, end=end)
    assert api["resolution"] == zoomed["shown"]["resolution"] == "raw"
    assert [s["count"] for s in zoomed["series"]] == [
        sum(1 for r in api["rows"] if r["point_name"] == p) for p in ("temp", "fan")
    ]
    await browser.wait_for(COMPLETENESS)
    await browser.screenshot(tmp_path / "zoom.png", "#chart-panel")
    keep(tmp_path / "zoom.png", "page-zoomed.png")

    await browser.evaluate("history.back()")
    await browser.wait_for(DRAWN + f" && window.streamerChart.start === {START}")
    back = await page_state(browser)
    assert "/" + back["search"] == wide and [s["count"] for s in back["series"]] == [SPAN_MIN, SPAN_MIN]

    await browser.evaluate(
        "document.querySelector('#chart .u-over').dispatchEvent(new MouseEvent('dblclick'))"
    )
    await browser.wait_for(DRAWN + f" && window.streamerChart.start === {START - span // 2}")
    out = await page_state(browser)
    assert (out["shown"]["start"], out["shown"]["end"]) == (START - span // 2, END + span // 2)
    assert (out["query"]["start"], out["query"]["end"]) == (iso(START - span // 2), iso(END + span // 2))


async def test_first_rollup_bucket_is_not_left_of_the_axis(
    live_views: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    """Hourly buckets from half past: the first bucket starts before the range, and the x-axis starts
    at it, so it is drawn at the axis, not left of it; the bucket's min..max band is drawn."""
    start = START + 30 * MINUTE
    await open_page(
        browser, f"{live_views.url}/?site=s1&points=temp&range=custom&start={start}&end={END}&resolution=1h"
    )
    await browser.wait_for(DRAWN)
    state = await page_state(browser)
    first = state["series"][0]["first"][0]
    assert first == START < start and state["xMin"] == START and state["xMax"] == END
    assert state["shown"]["bands"] == 1  # the min..max band behind the hourly means
    left = await browser.evaluate(f"document.getElementById('chart').plot.valToPos({first}, 'x')")
    assert left >= 0
    await browser.screenshot(tmp_path / "rollup.png", "#chart")
    keep(tmp_path / "rollup.png", "page-rollup.png")


async def test_many_series_three_units_and_a_wrapping_legend(
    live_views: LiveServer, browser: Browser, tmp_path: Path
) -> None:
    """24 points in three units: 24 distinct colours, three y-axes labelled degF, % and kW, and a legend
    that wraps onto several lines within the chart's width; the range's completeness is the API's."""
    await open_page(browser, f"{live_views.url}/?site=s3")
    await browser.wait_for(f"document.querySelectorAll('#points input').length === {MANY}")
    await browser.evaluate(
        "for (const b of document.querySelectorAll('#points input')) b.checked = true;"
        "document.getElementById('draw').click(); true"
    )
    await browser.wait_for(DRAWN)
    await browser.wait_for(COMPLETENESS)
    layout = await browser.evaluate(
        """(() => {
          const chart = document.getElementById('chart'), box = chart.getBoundingClientRect();
          const rows = [...chart.querySelectorAll('.u-legend tr.u-series')]
            .map(r => r.getBoundingClientRect());
          return {labels: chart.plot.axes.slice(1).map(a => a.label),
            colors: new Set(chart.plot.series.slice(1).map(s => s.stroke())).size,
            lines: new Set(rows.map(r => Math.round(r.top))).size,
            inside: rows.every(r => r.left >= box.left - 1 && r.right <= box.right + 1),
            completeness: document.getElementById('completeness').dataset.completeness};
        })()"""
    )
    state = await page_state(browser)
    assert len(state["series"]) == MANY and all(s["count"] == 60 for s in state["series"])
    assert layout["labels"] == ["degF", "%", "kW"] and layout["colors"] == MANY
    assert layout["lines"] > 2 and layout["inside"]
    shown = state["shown"]
    api = httpx.get(
        f"{live_views.url}/api/v1/sites/s3/completeness",
        params={"start": shown["start"], "end": shown["end"]},
    ).json()
    assert float(layout["completeness"]) == api["completeness"]
    await browser.screenshot(tmp_path / "many.png", "#chart")
    keep(tmp_path / "many.png", "page-many-series.png")
