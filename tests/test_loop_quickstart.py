"""End to end: the quickstart's own telemetry plus outcomes for its predictions make a report."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from modeltel._export.otlp_json import read_otlp_json
from modeltel._export.records import columns_of
from modeltel.loop._html import PLOTS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.wire
def test_quickstart_telemetry_and_outcomes_give_a_self_contained_report(tmp_path: Path) -> None:
    """modeltel evaluate on the demo's files and a labels file reports every plot, no external requests."""
    telemetry = tmp_path / "telemetry"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
    demo = [sys.executable, "-m", "modeltel.cli", "demo", "--output", str(telemetry), "--calls", "600"]
    subprocess.run(demo, env=env, check=True, capture_output=True, cwd=ROOT)

    ids = []
    for log in read_otlp_json(telemetry).logs:
        if log["event_name"] == "ml.prediction.records":
            assert isinstance(log["body"], str)  # JSON text
            ids.extend(columns_of(log["body"])["prediction_id"])
    assert len(ids) == 600
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["prediction_id", "label"])
        writer.writerows((pid, i % 3 == 0) for i, pid in enumerate(ids))

    report = tmp_path / "report.html"
    command = [
        "evaluate",
        str(telemetry),
        "--labels",
        str(labels),
        "--maturation",
        "0s",
        "--html",
        str(report),
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "modeltel.cli", *command], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "fraud" in proc.stdout
    html = report.read_text()
    plots = set(re.findall(r'<svg id="([^"]+)"', html))
    assert {f"{plot}-0" for plot in PLOTS} <= plots
    assert re.findall(r"https?://|<script|\bsrc=|\bhref=", html) == []
