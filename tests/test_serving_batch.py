"""The batch scorer example, run as a job configured by env vars and exporting to a receiver here."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import modeltel
from otlp_receiver import OtlpReceiver
from serving_support import EXAMPLES, otel_env, total_predictions

pytestmark = pytest.mark.wire

SCRIPT = EXAMPLES / "batch_scorer" / "score.py"
ROWS, BATCH = 12_000, 5_000  # three batches, the last one short


@dataclass
class Job:
    stdout: str
    rows: list[dict[str, str]]
    received: int


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Job]:
    """Run the scorer once for every test here."""
    out = tmp_path_factory.mktemp("batch") / "scores.csv"
    cmd = [sys.executable, str(SCRIPT), f"--rows={ROWS}", f"--batch-size={BATCH}", f"--out={out}"]
    with OtlpReceiver() as receiver:
        proc = subprocess.run(
            cmd, env=otel_env(receiver.http_endpoint), capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        received = total_predictions(receiver)
    with out.open() as f:
        yield Job(proc.stdout, list(csv.DictReader(f)), received)


def test_every_row_is_one_prediction_over_the_wire(job: Job) -> None:
    """ml.predictions counts rows, not batch calls, exactly."""
    assert job.received == len(job.rows) == ROWS


def test_row_hashes_equal_the_rows_hashed_alone(job: Job) -> None:
    """Each row's payload hash in the output is the hash of that row scored on its own."""
    score = _example_module()  # its synthetic table, regenerated from the same seed
    frame = score.customers(ROWS)
    for i in (0, 1, BATCH - 1, BATCH, ROWS - 1):  # first, batch edges, last
        row: dict[str, Any] = {k: float(frame.iloc[i][k]) for k in score.FEATURES}
        assert job.rows[i]["payload_hash"] == modeltel.payload_hash(row)
    assert "same as in the batch: True" in job.stdout


def _example_module() -> Any:
    spec = importlib.util.spec_from_file_location("batch_scorer_example", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
