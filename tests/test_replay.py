"""`modeltel replay`: sampled production features from OTLP-JSON files vs the offline pipeline."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PIPELINES = textwrap.dedent(
    """
    def offline_features(record):
        i = record["features"]["id"]
        return {"id": i, "amount": i * 1.5, "age": i % 50}

    def model(features):
        return min(features["amount"] / 100.0, 1.0)
    """
)

SERVING = textwrap.dedent(
    """
    import sys
    import modeltel
    from pipelines import model

    SCALE = float(sys.argv[1])

    @modeltel.instrument(model="fraud", version="1")
    def predict(features):
        return model(features)

    for i in range(40):
        predict({"id": i, "amount": i * 1.5 * SCALE, "age": i % 50})
    """
)


def _serve_and_replay(tmp_path: Path, scale: float) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pipelines.py").write_text(PIPELINES)
    (tmp_path / "serving.py").write_text(SERVING)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
    env.update(MODELTEL_OUTPUT=str(tmp_path / "telemetry"), MODELTEL_FEATURE_SAMPLE_RATE="1")
    subprocess.run([sys.executable, "serving.py", str(scale)], cwd=tmp_path, env=env, check=True)
    command = ["replay", "telemetry", "--model", "fraud", "--features", "pipelines:offline_features"]
    return subprocess.run(
        [sys.executable, "-m", "modeltel.cli", *command, "--predict", "pipelines:model"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.mark.wire
def test_replay_finds_a_feature_scaled_in_serving(tmp_path: Path) -> None:
    """A serving pipeline that multiplies amount by 1000 is reported on amount, not on age; exit 1."""
    proc = _serve_and_replay(tmp_path, scale=1000.0)
    assert proc.returncode == 1, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert lines["amount"].split()[1:3] == ["40", "39"]  # compared 40, disagreeing 39 (id 0 is 0 either way)
    assert lines["age"].split()[1:3] == ["40", "0"]


@pytest.mark.wire
def test_replay_reports_no_skew_when_pipelines_agree(tmp_path: Path) -> None:
    """The same pipeline on both sides: exit 0 and no disagreement anywhere."""
    proc = _serve_and_replay(tmp_path, scale=1.0)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "amount" in proc.stdout
