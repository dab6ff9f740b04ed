"""End to end: SDK-written telemetry and recorded outcomes -> evaluation -> text, JSON, HTML."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

from modeltel._export.otlp_json import OtlpJsonFileLogExporter
from modeltel._outcomes import record_outcome
from modeltel.cli import main
from modeltel.loop import (
    EvaluateOptions,
    Evaluation,
    evaluate,
    format_evaluation,
    inventory,
    render_html,
    to_jsonable,
)
from modeltel.loop._engine import INSTALL_HINT
from modeltel.loop._html import PLOTS
from modeltel.testing import capture

DAY = 86_400 * 1_000_000_000
DAY0 = 1_704_067_200 * 1_000_000_000
DAYS = 10
PER_BATCH = 200
TARGETS = {"owner": "risk-team", "metric": "roc_auc", "latency_budget_ms": 5, "cost_per_1k_target": 0.1}


def _emit_predictions(folder: Path, rng: np.random.Generator) -> list[tuple[str, int, float]]:
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(OtlpJsonFileLogExporter(folder)))
    logger = provider.get_logger("modeltel")
    made: list[tuple[str, int, float]] = []
    for day in range(DAYS):
        for version, latency in (("1.0", 0.002), ("2.0", 0.008)):
            ids = [f"{version}-{day}-{i}" for i in range(PER_BATCH)]
            times = (DAY0 + day * DAY + np.sort(rng.integers(1, DAY, PER_BATCH))).tolist()
            scores = rng.random(PER_BATCH).tolist()
            body = {
                "prediction_id": ids,
                "payload_hash": [f"{i:016x}" for i in range(PER_BATCH)],
                "tenant": ["acme", "globex"] * (PER_BATCH // 2),
                "score": scores,
                "decision": ["approve"] * PER_BATCH,
                "outcome": ["ok"] * PER_BATCH,
                "time_unix_nano": times,
                "duration_s": [latency] * PER_BATCH,
                "cost": [0.0001 if version == "1.0" else 0.0002] * PER_BATCH,
            }
            attrs = {"ml.model.name": "fraud", "ml.model.version": version}
            attrs.update({f"ml.model.{k}": v for k, v in TARGETS.items() if version == "2.0" or k != "owner"})
            logger.emit(event_name="ml.prediction.records", body=body, attributes=attrs, timestamp=times[-1])
            made.extend(zip(ids, times, scores, strict=True))
    provider.shutdown()
    return made


def _record_outcomes(folder: Path, made: list[tuple[str, int, float]], rng: np.random.Generator) -> None:
    with capture() as cap:
        for pid, ts, score in made:
            record_outcome(pid, label=int(rng.random() < score), at=(ts + DAY) / 1e9)
        OtlpJsonFileLogExporter(folder).export(cap.logs)


@pytest.fixture(scope="module")
def telemetry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("telemetry")
    rng = np.random.default_rng(3)
    _record_outcomes(folder, _emit_predictions(folder, rng), rng)
    return folder


@pytest.fixture(scope="module")
def evaluation(telemetry: Path) -> Evaluation:
    return evaluate(telemetry, EvaluateOptions(maturation="2d", reference="3d"))


def test_every_prediction_is_evaluated_per_version(evaluation: Evaluation) -> None:
    """Both versions are reported with all their predictions."""
    assert [(g.version, g.counts.predictions) for g in evaluation.groups] == [
        ("1.0", DAYS * PER_BATCH),
        ("2.0", DAYS * PER_BATCH),
    ]


def test_recorded_outcomes_join_to_matured_predictions(evaluation: Evaluation) -> None:
    """Outcomes sent with record_outcome label every matured prediction."""
    assert all(g.counts.labelled == g.counts.matured > 0 for g in evaluation.groups)


def test_versions_are_compared_on_the_declared_metric(evaluation: Evaluation) -> None:
    """Version 2.0 is compared with the champion on roc_auc with the cost difference per 1K."""
    (comparison,) = evaluation.comparisons
    assert (comparison.metric, comparison.cost_per_1k_delta) == ("roc_auc", pytest.approx(0.1, abs=1e-12))


def test_targets_missed_are_flagged_in_the_inventory(evaluation: Evaluation) -> None:
    """2.0 misses its 5 ms budget and 0.1 cost target; 1.0 has no owner declared."""
    entries = {e.version: e for e in evaluation.inventory}
    assert entries["1.0"].missing == ("owner", "purpose", "label_source", "label_delay")
    assert entries["1.0"].missed == ()
    assert entries["2.0"].missed == ("latency p95 8.0 ms > budget 5 ms", "cost/1K 0.2 > target 0.1")


def test_terminal_summary_names_each_group(evaluation: Evaluation) -> None:
    """The text summary has one section per model version."""
    text = format_evaluation(evaluation)
    assert "fraud@1.0  classification (primary: roc_auc)" in text
    assert "fraud@2.0  classification (primary: roc_auc)" in text


def test_json_output_round_trips(evaluation: Evaluation) -> None:
    """The JSON form is strict JSON (no NaN) and keeps the groups."""
    data = json.loads(json.dumps(to_jsonable(evaluation), allow_nan=False))
    assert [g["version"] for g in data["groups"]] == ["1.0", "2.0"]


def test_html_report_contains_every_plot_for_every_group(evaluation: Evaluation) -> None:
    """Each group has each of the five plots as an inline svg with its id."""
    html = render_html(evaluation)
    ids = set(re.findall(r'<svg id="([^"]+)"', html))
    assert ids == {f"{plot}-{n}" for plot in PLOTS for n in range(len(evaluation.groups))}


def test_html_report_makes_no_external_requests(evaluation: Evaluation) -> None:
    """No URL, no script, no external src or href: the file is self-contained."""
    html = render_html(evaluation)
    assert re.findall(r"https?://|<script|\bsrc=|\bhref=", html) == []


def test_inventory_command_reads_the_truth_table(tmp_path: Path) -> None:
    """inventory() lists each version with what it declared."""
    rng = np.random.default_rng(4)
    _emit_predictions(tmp_path, rng)
    entries = inventory(tmp_path)
    assert [(e.version, e.truth["owner"], e.predictions) for e in entries] == [
        ("1.0", None, DAYS * PER_BATCH),
        ("2.0", "risk-team", DAYS * PER_BATCH),
    ]


def test_import_modeltel_does_not_import_duckdb() -> None:
    """The hot path never loads the slow loop's engine."""
    code = "import sys, modeltel; print('duckdb' in sys.modules, 'modeltel.loop' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_evaluate_command_writes_json_and_html(
    telemetry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``modeltel evaluate`` prints the summary, shows progress on stderr and writes both files."""
    out_json, out_html = tmp_path / "eval.json", tmp_path / "report.html"
    code = main(
        [
            "evaluate",
            str(telemetry),
            "--maturation",
            "2d",
            "--reference",
            "3d",
            "--json",
            str(out_json),
            "--html",
            str(out_html),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "fraud@2.0" in captured.out
    assert "[8/8] versions and inventory" in captured.err
    assert len(json.loads(out_json.read_text(encoding="utf-8"))["groups"]) == 2
    assert out_html.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_evaluate_command_rejects_a_bad_duration(telemetry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed --maturation is a usage error naming the expected form."""
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", str(telemetry), "--maturation", "a week"])
    assert exit_info.value.code == 2
    assert "expected a duration like 7d" in capsys.readouterr().err


def test_inventory_command_exits_1_when_answers_are_missing(
    telemetry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Missing truth-table answers make ``modeltel inventory`` exit 1, each with the keyword of
    ``@modeltel.instrument`` that declares it."""
    assert main(["inventory", str(telemetry)]) == 1
    out = capsys.readouterr().out
    assert 'purpose              MISSING: declare it with @modeltel.instrument(..., purpose="' in out
    assert "label_delay          MISSING: declare it with @modeltel.instrument(..., label_delay=" in out


def test_missing_duckdb_prints_the_install_hint(telemetry: Path) -> None:
    """Without DuckDB, evaluate explains how to install the loop extra."""
    code = (
        "import sys; sys.modules['duckdb'] = None; from modeltel.cli import main; "
        f"sys.exit(main(['evaluate', {str(telemetry)!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr.strip()) == (2, "modeltel evaluate: " + INSTALL_HINT)


def test_parquet_prediction_tables_evaluate_like_otlp_json(tmp_path: Path) -> None:
    """A predictions*.parquet table with the record columns loads like the OTLP-JSON records."""
    rng = np.random.default_rng(6)
    n = 500
    times = DAY0 + np.sort(rng.integers(0, 5 * DAY, n))
    scores = rng.random(n)
    table = pa.table(
        {
            "model": ["fraud"] * n,
            "version": ["1.0"] * n,
            "tenant": ["acme"] * n,
            "prediction_id": [f"p{i}" for i in range(n)],
            "payload_hash": [f"{i:016x}" for i in range(n)],
            "score": scores,
            "decision": ["approve"] * n,
            "outcome": ["ok"] * n,
            "time_unix_nano": times,
            "duration_s": np.full(n, 0.001),
            "cost": np.full(n, 0.0001),
        }
    )
    pq.write_table(table, tmp_path / "predictions.parquet")
    labels = pa.table(
        {"prediction_id": [f"p{i}" for i in range(n)], "label": (rng.random(n) < scores).astype(int)}
    )
    pq.write_table(labels, tmp_path / "labels.parquet")
    result = evaluate(tmp_path, EvaluateOptions(labels=(tmp_path / "labels.parquet",), maturation="0s"))
    (group,) = result.groups
    assert (group.counts.predictions, group.counts.labelled) == (n, n)
