"""An application that installed its own OpenTelemetry providers: modeltel records through them,
and its force_flush()/shutdown() cover what it recorded there, leaving the providers running."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

import pytest

from modeltel._export.records import columns_of
from otlp_receiver import OtlpReceiver, metric_total
from serving_support import otel_env

pytestmark = pytest.mark.wire

APP = str(Path(__file__).with_name("app_otel_app.py"))
CALLS = 300


@pytest.mark.parametrize("mode", ["flush", "shutdown"])
def test_flush_covers_what_modeltel_recorded_through_the_apps_providers(mode: str) -> None:
    """Right after modeltel.force_flush() (or shutdown()) the receiver holds every prediction's
    span, record row and count; the application's provider still works afterwards."""
    with OtlpReceiver() as receiver:
        cmd = [sys.executable, APP, str(CALLS), mode]
        with subprocess.Popen(
            cmd, env=otel_env(receiver.http_endpoint), stdin=PIPE, stdout=PIPE, stderr=PIPE, text=True
        ) as proc:
            assert proc.stdout is not None and proc.stdin is not None
            flushed = json.loads(proc.stdout.readline() or "null")
            spans, logs, metrics = receiver.spans(), receiver.logs(), receiver.metrics()
            proc.stdin.write("go\n")
            proc.stdin.flush()
            app = json.loads(proc.stdout.readline() or "null")
            assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
        after = [s for s in receiver.spans() if s["name"] == "after modeltel"]

    assert flushed == {"modeltel": True}
    names = [s["name"] for s in spans]
    assert names.count("predict appotel") == CALLS
    assert names.count("inside predict") == CALLS
    records = [r for r in logs if r["event_name"] == "ml.prediction.records"]
    rows = [i for r in records for i in columns_of(r["body"])["prediction_id"]]
    assert len(set(rows)) == CALLS
    assert metric_total(metrics, "ml.predictions", **{"ml.model.name": "appotel"}) == CALLS
    assert app == {"app": True} and len(after) == 1  # modeltel left the provider running
