"""The loop's readers take telemetry as a real run leaves it, a truncated last line included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modeltel._export.records import columns_of
from modeltel.cli import main as cli_main

APP = str(Path(__file__).with_name("outcome_app.py"))
CALLS = 3_000


def _run_app(folder: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MODELTEL_"))}
    env.update(
        OTEL_TRACES_SAMPLER="always_off", MODELTEL_FEATURE_SAMPLE_RATE="0", MODELTEL_OUTPUT=str(folder)
    )
    proc = subprocess.run(
        [sys.executable, APP, "loop", str(CALLS)], env=env, capture_output=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def _log_records(lines: list[bytes]) -> list[dict[str, Any]]:
    requests = [json.loads(line) for line in lines]
    return [
        record
        for request in requests
        for resource in request["resourceLogs"]
        for scope in resource["scopeLogs"]
        for record in scope["logRecords"]
    ]


def _expected_counts(lines: list[bytes]) -> tuple[int, int]:
    """Predictions and labelled predictions in ``lines``, read independently of the loaders."""
    predictions: set[str] = set()
    labelled: set[str] = set()
    for record in _log_records(lines):
        if record["eventName"] == "ml.prediction.records":
            predictions.update(columns_of(record["body"]["stringValue"])["prediction_id"])
        elif record["eventName"] == "ml.outcome":
            attributes = {a["key"]: a["value"] for a in record["attributes"]}
            labelled.add(attributes["ml.prediction.id"]["stringValue"])
    return len(predictions), len(predictions & labelled)


@pytest.fixture(scope="module")
def truncated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    """A folder a real run wrote, its last line then cut in half (a full disk), and its lines
    as written."""
    folder = tmp_path_factory.mktemp("truncated") / "telemetry"
    _run_app(folder)
    logs = folder / "logs.jsonl"
    lines = logs.read_bytes().splitlines(keepends=True)
    logs.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    return folder, lines


@pytest.mark.wire
def test_evaluate_skips_a_truncated_last_line_and_says_so(
    truncated: tuple[Path, list[bytes]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``modeltel evaluate`` exits 0, warns on stderr with the count, and evaluates every other
    line (main: exit 2, "line at byte ... is not JSON")."""
    folder, lines = truncated
    report = tmp_path / "evaluation.json"

    code = cli_main(["evaluate", str(folder), "--maturation", "0s", "--quiet", "--json", str(report)])

    err = capsys.readouterr().err
    assert code == 0, err
    assert "skipped 1 malformed line(s) (not JSON) in logs.jsonl; evaluated the rest" in err
    evaluation = json.loads(report.read_text())
    (group,) = evaluation["groups"]
    assert evaluation["skipped_lines"] == {"logs.jsonl": 1}
    predictions, labelled = _expected_counts(lines[:-1])
    assert (group["counts"]["predictions"], group["counts"]["labelled"]) == (predictions, labelled)
    assert predictions > 0 and labelled > 0


@pytest.mark.wire
def test_inventory_skips_a_truncated_last_line_and_says_so(
    truncated: tuple[Path, list[bytes]], capsys: pytest.CaptureFixture[str]
) -> None:
    """``modeltel inventory`` lists the model the rest of the folder holds and warns on stderr
    (main: exit 2, "line at byte ... is not JSON")."""
    folder, _ = truncated

    code = cli_main(["inventory", str(folder)])

    out, err = capsys.readouterr()
    assert code == 1, err  # the app declares no owner or targets: answers are missing
    assert "modeltel inventory: skipped 1 malformed line(s) (not JSON) in logs.jsonl" in err
    assert "loop" in out and "1.0" in out
