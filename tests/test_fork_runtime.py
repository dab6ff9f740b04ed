"""A forked child builds its own pipeline: no hang, no pre-fork count exported twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modeltel._export.otlp_json import read_otlp_json
from modeltel.cli.summary import summarize

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
    names = [s["name"] for s in read_otlp_json(tmp_path).spans]
    assert names.count("app work in child") == 5  # the app's spans still flow from the children


SIGNAL_APP = """
import os, signal, sys
import modeltel

@modeltel.instrument(model="sig", version="1")
def predict(features):
    return 0.5

modeltel.install_signal_handlers()
for _ in range(25):
    predict({"x": 1.0})
print("ready", flush=True)
signal.pause()
"""


def test_sigterm_flushes_when_handlers_are_installed(tmp_path: Path) -> None:
    """install_signal_handlers(): SIGTERM exports what was recorded, then ends the process as before."""
    import signal as sig

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
    env.update(MODELTEL_OUTPUT=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", SIGNAL_APP], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(sig.SIGTERM)
        assert proc.wait(timeout=30) == -sig.SIGTERM
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert {r.tenant: r.calls for r in summarize(tmp_path).rows}[""] == 25
