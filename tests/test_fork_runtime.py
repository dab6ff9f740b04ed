"""A forked child builds its own pipeline: no hang, no pre-fork count exported twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modeltel._summary import summarize

APP = str(Path(__file__).with_name("fork_app.py"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_children_forked_during_export_count_exactly_once(tmp_path: Path) -> None:
    """Parent and children counts add up exactly; every child exits promptly."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
    env.update(
        MODELTEL_OUTPUT=str(tmp_path), OTEL_METRIC_EXPORT_INTERVAL="50", MODELTEL_FEATURE_SAMPLE_RATE="0"
    )
    proc = subprocess.run([sys.executable, APP], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {r.tenant: r.calls for r in summarize(tmp_path).rows}
    assert rows["parent"] == 20
    assert rows["child"] == 5 * 3
