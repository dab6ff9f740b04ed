"""Per-period figures: every documented metric in every period, periods anchored where the docs say."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from modeltel.cli import main
from modeltel.loop import EvaluateOptions, evaluate, render_html, to_jsonable
from modeltel.loop._synthetic import append_records, outcome_record, prediction_columns, prediction_record

DAY = 86_400 * 1_000_000_000
DAY0 = 1_704_326_400 * 1_000_000_000  # 2024-01-04T00:00:00Z, a Thursday
DAYS = 21


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three weeks of a labelled classifier, starting on a Thursday."""
    rng = np.random.default_rng(5)
    out = tmp_path_factory.mktemp("periods")
    records = []
    for day in range(DAYS):
        ids = [f"d{day}-{i}" for i in range(400)]
        times = (DAY0 + day * DAY + np.sort(rng.integers(0, DAY, 400))).tolist()
        scores = rng.beta(2, 5, 400)
        records.append(prediction_record("fraud", "1", prediction_columns(ids, times, scores.tolist())))
        labels = rng.random(400) < scores
        records += [
            outcome_record(int(y), at_ns=t + 1, prediction_id=i)
            for i, t, y in zip(ids, times, labels, strict=True)
        ]
    append_records(out, records, per_line=400)
    return out


def _weekday(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%A %H:%M")


def test_weekly_periods_start_on_monday_midnight_utc(folder: Path) -> None:
    """7-day periods start Monday 00:00 UTC (they used to start on Thursdays, from the epoch);
    daily ones at midnight; ``period_origin`` moves them."""
    weekly = evaluate(folder, EvaluateOptions(period="7d", maturation="0s"))
    (group,) = weekly.groups
    assert {_weekday(p.start_ns) for p in group.periods} == {"Monday 00:00"}
    assert sum(p.predictions for p in group.periods) == DAYS * 400
    daily = evaluate(folder, EvaluateOptions(period="1d", maturation="0s"))
    assert {_weekday(p.start_ns)[-5:] for p in daily.groups[0].periods} == {"00:00"}
    moved = evaluate(
        folder, EvaluateOptions(period="7d", maturation="0s", period_origin="2024-01-04T06:00:00Z")
    )
    assert {_weekday(p.start_ns) for p in moved.groups[0].periods} == {"Thursday 06:00"}


def test_every_period_carries_every_documented_metric(folder: Path) -> None:
    """JSON and HTML: AUC, log loss, Brier, ECE, precision/recall/F1, predictions, matured,
    labelled and coverage for each period, not only the primary metric."""
    result = evaluate(folder, EvaluateOptions(period="7d", maturation="0s"))
    points = to_jsonable(result)["groups"][0]["periods"]
    assert len(points) == 4  # Thursday's week, two whole weeks, and the last partial one
    for point in points:
        assert set(point["metrics"]) == {"roc_auc", "log_loss", "brier", "ece", "precision", "recall", "f1"}
        assert all(isinstance(v, float) for v in point["metrics"].values())
        assert point["predictions"] == point["matured"] == point["labelled"] > 0
        assert point["label_coverage"] == 1.0
        assert point["quality"] == point["metrics"]["roc_auc"]
    page = render_html(result)
    assert "<h3>Per period</h3>" in page and "log_loss" in page and "ece" in page


def test_the_cli_takes_a_period_origin(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(folder), "--period", "7d", "--period-origin", "2024-01-01T00:00:00Z"]) == 0
    assert "period 7d from 2024-01-01T00:00:00Z" in capsys.readouterr().out


def test_the_engine_memory_is_bounded_and_settable(folder: Path) -> None:
    """DuckDB's own default is 80% of RAM (19.5 GB peak at 100M predictions here); modeltel caps
    it at 4GB unless ``--memory-limit`` says otherwise, and a small limit still evaluates (spilling)."""
    from modeltel.loop._engine import connect

    assert connect().execute("SELECT current_setting('memory_limit')").fetchone() == ("3.7 GiB",)
    small = evaluate(folder, EvaluateOptions(period="7d", maturation="0s", memory_limit="256MB"))
    assert small.groups[0].counts.predictions == DAYS * 400
