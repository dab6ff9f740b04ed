"""The HTML report in a real browser: headless Chromium renders the report of a fixed synthetic run.

The report holds no script. The test renders a copy with a probe appended that reads what the
browser computed (each legend swatch's colour, the page's width, every resource it loaded) into
the DOM, which ``--dump-dom`` prints. ``CI=true`` makes a missing Chromium a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from modeltel.loop import EvaluateOptions, evaluate, render_html
from modeltel.loop._synthetic import generate

WIDTH = 1280
PROBE = """
<script>
const plots = [...document.querySelectorAll("svg")].map(svg => ({
  id: svg.id,
  swatches: [...svg.querySelectorAll("rect.sw")].map(r => getComputedStyle(r).fill),
  ticks: svg.querySelectorAll("text.l").length,
}));
const probe = {
  plots,
  scrollWidth: document.documentElement.scrollWidth,
  innerWidth: window.innerWidth,
  resources: performance.getEntriesByType("resource").map(r => r.name),
};
const out = document.createElement("pre");
out.id = "probe";
out.textContent = JSON.stringify(probe);
document.body.appendChild(out);
</script>
"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; .ci/run installs it (make redis)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def _browser(chromium: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
            f"--window-size={WIDTH},2400",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    generate(folder, 60_000, days=14)
    options = EvaluateOptions(labels=[folder / "labels.parquet"], period="1d", maturation="1d")
    page = folder / "report.html"
    page.write_text(render_html(evaluate(folder, options)), encoding="utf-8")
    return page


def test_the_report_renders_cleanly_in_chromium(report: Path, tmp_path: Path) -> None:
    """No console errors and no requests beyond the file itself; every plot has ticks and a legend
    whose swatch colours differ within the plot; no horizontal overflow at 1,280 px; a PNG."""
    chromium = _chromium()
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"))
    dom = _browser(chromium, "--dump-dom", probed.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert found is not None, dom.stdout[-2000:]
    probe = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    assert probe["resources"] == []
    assert probe["scrollWidth"] <= probe["innerWidth"] == WIDTH
    assert {p["id"].rsplit("-", 1)[0] for p in probe["plots"]} >= {
        "score-distribution",
        "calibration",
        "metrics-over-time",
        "drift",
        "cost-latency",
    }
    for plot in probe["plots"]:
        swatches = plot["swatches"]
        assert len(swatches) >= 1, plot["id"]
        assert len(set(swatches)) == len(swatches), plot
        assert "rgb(68, 68, 68)" not in swatches, plot  # the grey a CSS rule once painted them all
        assert plot["ticks"] >= 4, plot

    png = tmp_path / "report.png"
    shot = _browser(chromium, f"--screenshot={png}", report.as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    keep = os.environ.get("MODELTEL_REPORT_SCREENSHOT")
    if keep:  # how docs/img/report.png is made: MODELTEL_REPORT_SCREENSHOT=docs/img/report.png
        Path(keep).write_bytes(data)


def test_short_periods_are_labelled_with_their_time_and_axes_start_at_zero(tmp_path: Path) -> None:
    """30-second periods: the over-time axis names times of day, not one date repeated; the score
    distribution's share axis starts at 0 (not below it)."""
    start = 1_764_720_000 * 1_000_000_000  # 2025-12-03T00:00:00Z
    columns = {
        "prediction_id": [f"p{i}" for i in range(600)],
        "payload_hash": [f"h{i}" for i in range(600)],
        "tenant": ["acme"] * 600,
        "score": [(i % 97) / 97 for i in range(600)],
        "decision": ["approve"] * 600,
        "outcome": ["ok"] * 600,
        "time_unix_nano": [start + i * 1_000_000_000 for i in range(600)],
        "duration_s": [0.002] * 600,
        "cost": [0.0001] * 600,
    }
    from modeltel.loop._synthetic import append_records, prediction_record

    append_records(tmp_path, [prediction_record("m", "1", columns)])
    page = render_html(evaluate(tmp_path, EvaluateOptions(period="30s", reference="2m")))
    over_time = re.search(r'<svg id="metrics-over-time-0".*?</svg>', page, re.S)
    assert over_time is not None
    times = re.findall(r">(\d\d:\d\d:\d\d)</text>", over_time.group(0))
    assert len(set(times)) >= 4 and times[0] == "00:00:00"
    scores = re.search(r'<svg id="score-distribution-0".*?</svg>', page, re.S)
    assert scores is not None
    labels = re.findall(r'class="l">(-?[\d.e-]+)</text>', scores.group(0))
    assert labels and all(float(v) >= 0 for v in labels)
