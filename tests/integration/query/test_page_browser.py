"""The status page in headless Chromium: pick two points, the chart draws exactly their data.

Needs Debian's chromium (`apt-get update && apt-get install -y chromium`); the test fails with that
command in its message when the browser is missing, it never installs anything. Saves
the screenshot under the test's tmp dir (STREAMER_UPDATE_SCREENSHOT=1 refreshes docs/screenshot.png).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

from streamer.settings import Settings
from tests.integration.query.cdp import Browser
from tests.integration.query.conftest import MINUTE, SPAN_MIN, T0, LiveServer, fill

DOCS_SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "screenshot.png"
START, END = T0, T0 + SPAN_MIN * MINUTE

PICK_TWO_AND_DRAW = f"""
(() => {{
  document.getElementById("range").value = "custom";
  document.getElementById("range").dispatchEvent(new Event("change"));
  document.getElementById("start").value = "{START}";
  document.getElementById("end").value = "{END}";
  for (const box of document.querySelectorAll("#points input")) {{
    box.checked = ["temp", "fan"].includes(box.value);
  }}
  document.getElementById("draw").click();
  return true;
}})()
"""


@pytest.mark.kafka
async def test_page_draws_the_two_chosen_points(kafka_settings: Settings, tmp_path: Path) -> None:
    """After choosing temp and fan and pressing Draw, the chart's series are exactly the API's rows for
    them (count, first and last sample), the status table lists both sites with their completeness and
    repairs, and a screenshot is saved."""
    screenshot = tmp_path / "screenshot.png"
    fill(kafka_settings)
    with LiveServer(kafka_settings) as live:
        api = httpx.get(
            f"{live.url}/api/v1/sites/s1/samples", params={"points": "temp,fan", "start": START, "end": END}
        ).json()
        async with Browser(tmp_path / "profile") as browser:
            await browser.open(f"{live.url}/?site=s1")
            await browser.wait_for("document.body !== null && document.body.dataset.ready === '1'")
            await browser.wait_for("document.querySelectorAll('#points input').length === 3")
            await browser.evaluate(PICK_TWO_AND_DRAW)
            await browser.wait_for("document.getElementById('chart').dataset.state === 'drawn'")
            series = json.loads(await browser.evaluate("document.getElementById('chart').dataset.series"))
            drawn = await browser.evaluate("window.streamerChart.series.map(s => [s.point, s.data.length])")
            await browser.wait_for("document.querySelectorAll('#sites tbody tr').length === 2")
            sites = await browser.evaluate(
                "[...document.querySelectorAll('#sites tbody tr td:first-child')].map(td => td.textContent)"
            )
            heads = await browser.evaluate(
                "[...document.querySelectorAll('#sites thead th')].map(th => th.textContent)"
            )
            cells = await browser.evaluate(
                "[...document.querySelectorAll('#sites tbody tr')]"
                ".map(tr => [...tr.children].map(td => td.textContent))"
            )
            health = await browser.wait_for(
                "document.getElementById('health').textContent !== '…' && "
                "document.getElementById('health').textContent"
            )
            await browser.screenshot(screenshot)
    expected = []
    for point in ("fan", "temp"):  # the page lists points by name
        rows = [r for r in api["rows"] if r["point_name"] == point]
        expected.append(
            {
                "point": point,
                "count": len(rows),
                "first": [rows[0]["timestamp"], rows[0]["value"]],
                "last": [rows[-1]["timestamp"], rows[-1]["value"]],
            }
        )
    assert api["resolution"] == "raw" and [e["count"] for e in expected] == [SPAN_MIN, SPAN_MIN]
    assert series == expected
    assert drawn == [["fan", SPAN_MIN], ["temp", SPAN_MIN]]
    assert sites == ["s1", "s2"] and health == "ok"
    s1 = dict(zip(heads, cells[0], strict=True))  # the data is of 2023: nothing in the last 24 h
    assert (s1["complete 24 h"], s1["repaired windows"], s1["samples recovered"]) == ("0.00 %", "0", "0")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("STREAMER_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(screenshot, DOCS_SCREENSHOT)
