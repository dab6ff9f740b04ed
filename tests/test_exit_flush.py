"""The exit flush under a deadline it cannot meet: counts first, each signal on its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modeltel._export.otlp_json import read_otlp_json
from otlp_receiver import metric_total

pytestmark = pytest.mark.wire

APP = str(Path(__file__).with_name("wire_app.py"))


def _files_env(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
    env.update(MODELTEL_OUTPUT=str(folder), MODELTEL_FEATURE_SAMPLE_RATE="0", **extra)
    return env


def test_a_slow_span_flush_leaves_every_count(tmp_path: Path) -> None:
    """20,000 traced calls to files with a 1 s exit deadline: the span queue still holds more
    than a second of writing at exit, yet metrics.jsonl counts every call."""
    calls = 20_000
    env = _files_env(tmp_path, MODELTEL_SHUTDOWN_TIMEOUT="1")
    proc = subprocess.run(
        [sys.executable, APP, str(calls)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr

    files = read_otlp_json(tmp_path)
    assert metric_total(files.metrics, "ml.predictions", **{"ml.model.name": "wire"}) == calls
