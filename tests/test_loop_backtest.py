"""Backtest: a signal that tracks a planted quality drop ranks above pure seasonality."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from modeltel.loop import EvaluateOptions, evaluate
from modeltel.loop._backtest import backtest
from modeltel.loop._durations import format_instant
from modeltel.loop._synthetic import append_records, feature_record, prediction_record

DAY = 86_400 * 1_000_000_000
DAY0 = 1_704_067_200 * 1_000_000_000
DAYS = 36
PER_DAY = 600
DROP_FROM = 14


def _day(rng: np.random.Generator, day: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    # Before DROP_FROM the score explains the label; afterwards a growing share of traffic comes
    # from a segment with higher ``risk`` whose labels the model cannot predict.
    new_share = min(1.0, max(0.0, (day - DROP_FROM + 1) / 12))
    new = rng.random(PER_DAY) < new_share
    risk = np.where(new, rng.normal(2.0, 1.0, PER_DAY), rng.normal(0.0, 1.0, PER_DAY))
    score = 1.0 / (1.0 + np.exp(-2.0 * (risk - np.where(new, 2.0, 0.0))))
    label = np.where(new, rng.random(PER_DAY) < 0.5, rng.random(PER_DAY) < score).astype(int)
    temperature = rng.normal(5.0 * math.sin(2 * math.pi * day / 7), 1.0, PER_DAY)
    return {"risk": risk, "temperature": temperature}, score, label


def _write(folder: Path) -> None:
    rng = np.random.default_rng(5)
    records, label_ids, labels = [], [], []
    for day in range(DAYS):
        feats, score, label = _day(rng, day)
        times = DAY0 + day * DAY + np.sort(rng.integers(1, DAY, PER_DAY))
        ids = [f"d{day}-{i}" for i in range(PER_DAY)]
        columns = {
            "prediction_id": ids,
            "score": score.tolist(),
            "time_unix_nano": times.tolist(),
            "outcome": ["ok"] * PER_DAY,
            "duration_s": [0.001] * PER_DAY,
            "cost": [0.0] * PER_DAY,
        }
        records.append(prediction_record("churn", "1", columns))
        for i in range(0, PER_DAY, 2):
            row = {name: float(values[i]) for name, values in feats.items()}
            records.append(feature_record("churn", "1", row, time_ns=int(times[i]), prediction_id=ids[i]))
        label_ids.extend(ids)
        labels.extend(label.tolist())
    append_records(folder, records, per_line=500)
    pq.write_table(pa.table({"prediction_id": label_ids, "label": labels}), folder / "labels.parquet")


def test_drift_that_tracks_quality_outranks_seasonal_drift(tmp_path: Path) -> None:
    """``risk`` drift moves with the AUC drop and is trusted; ``temperature`` is noise."""
    _write(tmp_path)
    options = EvaluateOptions(
        labels=(tmp_path / "labels.parquet",),
        maturation="1d",
        reference="7d",
        as_of=format_instant(DAY0 + (DAYS + 2) * DAY),
    )
    (group,) = evaluate(tmp_path, options).groups
    ranking = [t.signal for t in group.backtest]
    verdicts = {t.signal: t.verdict for t in group.backtest}
    assert ranking.index("psi:risk") < ranking.index("psi:temperature")
    assert (verdicts["psi:risk"], verdicts["psi:temperature"]) == ("trusted", "noise")


def test_backtest_ranks_by_rank_correlation() -> None:
    """Signals are ordered by Spearman correlation with the quality change."""
    change = [0.0, 0.01, 0.05, 0.10, 0.20, 0.30]
    ranked = backtest({"seasonal": [2, 3, 1, 1, 3, 2], "tracks": [0.1, 0.2, 0.4, 0.5, 0.8, 0.9]}, change)
    assert [(t.signal, t.verdict) for t in ranked] == [("tracks", "trusted"), ("seasonal", "noise")]


def test_short_history_is_not_judged() -> None:
    """Fewer than five periods: insufficient history."""
    (trust,) = backtest({"s": [0.1, 0.2, 0.3]}, [0.0, 0.1, 0.2])
    assert trust.verdict == "insufficient history"
