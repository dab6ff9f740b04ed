"""Quality metrics over matured, labelled predictions, computed as SQL aggregates.

Every metric is an aggregate over table ``joined`` grouped by caller-chosen keys, so it runs
in one pass in bounded memory and ports to any SQL engine. The score is read as P(label = 1)
for classification and as the prediction for regression. Definitions match scikit-learn:

* ROC AUC: Mann-Whitney form, ties counted half; undefined (None) when one class is absent.
* Log loss: probabilities clipped to [eps, 1 - eps], eps = float64 machine epsilon.
* Brier: mean squared difference between score and label.
* ECE: sum over 10 equal-width bins of (bin share) * |positive rate - mean score|, bins as in
  ``sklearn.calibration.calibration_curve(strategy="uniform")``: (lo, hi], the first closed.
* Precision, recall, F1 at ``threshold`` (positive when score >= threshold); None when the
  denominator is 0. R2 is None when every label is equal.

Non-finite scores (NaN, infinities) are excluded from every metric and counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from modeltel.loop._dialect import finite

__all__ = [
    "CALIBRATION_BINS",
    "CLASSIFICATION_METRICS",
    "REGRESSION_METRICS",
    "Classification",
    "Counts",
    "Key",
    "Regression",
    "ReliabilityBin",
    "classification",
    "classification_within",
    "counts",
    "regression",
]

Key = tuple[Any, ...]
CALIBRATION_BINS: Final = 10
_EPS: Final = float(np.finfo(np.float64).eps)
# Scores in [0, 1) fall in this many equal buckets for the ROC AUC's sort; the rest in two more.
_AUC_BUCKETS: Final = 1024
_EVALUABLE: Final = f"matured AND label_num IS NOT NULL AND {finite('score')}"


@dataclass(frozen=True)
class Counts:
    """How many predictions a group holds at each stage of the join."""

    predictions: int
    matured: int
    labelled: int
    nonfinite_scores: int
    unscored: int
    errors: int

    @property
    def label_coverage(self) -> float | None:
        """Labelled / matured; None before anything matured."""
        return self.labelled / self.matured if self.matured else None

    @property
    def error_rate(self) -> float | None:
        """Share of predictions whose outcome is ``error``."""
        return self.errors / self.predictions if self.predictions else None


@dataclass(frozen=True)
class ReliabilityBin:
    """One calibration bin: scores in (lo, hi], their mean and the observed positive rate."""

    lo: float
    hi: float
    count: int
    mean_score: float
    positive_rate: float


# The quality metrics each task reports, by their field names below.
CLASSIFICATION_METRICS: Final = ("roc_auc", "log_loss", "brier", "ece", "precision", "recall", "f1")
REGRESSION_METRICS: Final = ("mae", "rmse", "r2")


@dataclass(frozen=True)
class Classification:
    """Binary classification quality of one group."""

    n: int
    roc_auc: float | None
    log_loss: float
    brier: float
    ece: float
    reliability: tuple[ReliabilityBin, ...]
    threshold: float
    precision: float | None
    recall: float | None
    f1: float | None
    base_rate: float
    mean_score: float


@dataclass(frozen=True)
class Regression:
    """Regression quality of one group."""

    n: int
    mae: float
    rmse: float
    r2: float | None


def _select_keys(keys: Sequence[str]) -> str:
    return ", ".join(keys)


def _split(row: Sequence[Any], width: int) -> tuple[Key, Sequence[Any]]:
    return tuple(row[:width]), row[width:]


def _models_filter(models: Sequence[str]) -> str:
    quoted = ", ".join("'" + m.replace("'", "''") + "'" for m in models)
    return f"model IN ({quoted})" if models else "FALSE"


def counts(con: Any, keys: Sequence[str]) -> dict[Key, Counts]:
    """Prediction, maturation and label counts per group."""
    rows = con.execute(f"""
        SELECT {_select_keys(keys)}, count(*), count(*) FILTER (WHERE matured),
               count(*) FILTER (WHERE matured AND label_str IS NOT NULL),
               count(*) FILTER (WHERE matured AND label_str IS NOT NULL AND NOT {finite("score")}),
               count(*) FILTER (WHERE matured AND label_str IS NOT NULL AND score IS NULL),
               count(*) FILTER (WHERE outcome = 'error')
        FROM joined GROUP BY ALL
    """).fetchall()
    result: dict[Key, Counts] = {}
    for row in rows:
        key, values = _split(row, len(keys))
        result[key] = Counts(*(int(v) for v in values))
    return result


def _bin_expression() -> tuple[str, list[float]]:
    edges = [float(e) for e in np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)]
    cases = " ".join(f"WHEN score <= {edges[i]!r} THEN {i - 1}" for i in range(1, CALIBRATION_BINS))
    return f"CASE {cases} ELSE {CALIBRATION_BINS - 1} END", edges


def classification(
    con: Any, keys: Sequence[str], models: Sequence[str], threshold: float, where: str = "TRUE"
) -> dict[Key, Classification]:
    """Classification metrics per group for the given models (labels 0/1), rows matching ``where``."""
    return classification_within(con, keys, models, threshold, {"": where})[""]


def classification_within(
    con: Any, keys: Sequence[str], models: Sequence[str], threshold: float, subsets: Mapping[str, str]
) -> dict[str, dict[Key, Classification]]:
    """:func:`classification` for each named row filter in ``subsets``, in one pass sorted by
    score for all of them (the sort behind ROC AUC is the costly part)."""
    evaluable = f"{_EVALUABLE} AND {_models_filter(models)}"
    aucs = _roc_auc(con, keys, evaluable, list(subsets.values()))
    return {
        name: _classification(con, keys, f"{evaluable} AND ({where})", threshold, auc)
        for (name, where), auc in zip(subsets.items(), aucs, strict=True)
    }


def _classification(
    con: Any, keys: Sequence[str], where: str, threshold: float, aucs: dict[Key, float | None]
) -> dict[Key, Classification]:
    k = _select_keys(keys)
    clip_p = f"greatest(least(score, {1 - _EPS!r}), {_EPS!r})"
    clip_q = f"greatest(least(1 - score, {1 - _EPS!r}), {_EPS!r})"
    base = con.execute(f"""
        SELECT {k}, count(*), avg(label_num), avg(score),
               -avg(label_num * ln({clip_p}) + (1 - label_num) * ln({clip_q})),
               avg(power(score - label_num, 2)),
               count(*) FILTER (WHERE score >= {threshold!r} AND label_num = 1),
               count(*) FILTER (WHERE score >= {threshold!r} AND label_num = 0),
               count(*) FILTER (WHERE score < {threshold!r} AND label_num = 1)
        FROM joined WHERE {where} GROUP BY ALL
    """).fetchall()
    bins = _reliability(con, keys, where)
    result: dict[Key, Classification] = {}
    for row in base:
        key, (n, base_rate, mean_score, log_loss, brier, tp, fp, fn) = _split(row, len(keys))
        table = bins.get(key, ())
        ece = sum(b.count / n * abs(b.positive_rate - b.mean_score) for b in table)
        result[key] = Classification(
            n=int(n),
            roc_auc=aucs.get(key),
            log_loss=float(log_loss),
            brier=float(brier),
            ece=float(ece),
            reliability=table,
            threshold=threshold,
            precision=_ratio(tp, tp + fp),
            recall=_ratio(tp, tp + fn),
            f1=_ratio(2 * tp, 2 * tp + fp + fn),
            base_rate=float(base_rate),
            mean_score=float(mean_score),
        )
    return result


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _roc_auc(
    con: Any, keys: Sequence[str], where: str, subsets: Sequence[str]
) -> list[dict[Key, float | None]]:
    """ROC AUC per group of the rows matching ``where``, for each row filter in ``subsets``, from
    one sort by score: a positive counts the negatives of its subset scored below it twice and
    those tied with it once (the Mann-Whitney sum, times 2).

    The sort is split into :data:`_AUC_BUCKETS` score buckets per group: within a bucket a
    window counts the negatives below and tied, and the negatives of the lower buckets come from
    a per-bucket aggregate. Equal scores share a bucket, so the sum is exact. Spark runs each
    window partition in one task; per group alone, a version's rows were one task on one core
    however many the cluster had (and that task's buffer spilled at 100M rows)."""
    k = _select_keys(keys)
    n = range(len(subsets))
    flags = ", ".join(
        f"label_num = 1 AND ({s}) AS pos{i}, CASE WHEN label_num = 0 AND ({s}) THEN 1 ELSE 0 END AS neg{i}"
        for i, s in enumerate(subsets)
    )
    b = _AUC_BUCKETS
    bucket = f"CASE WHEN score < 0 THEN -1 WHEN score >= 1 THEN {b} ELSE CAST(floor(score * {b}) AS INT) END"
    by_score = f"PARTITION BY {k}, bucket ORDER BY score RANGE BETWEEN"
    frames = ", ".join(
        f"pos{i}, neg{i}, sum(neg{i}) OVER ({by_score} UNBOUNDED PRECEDING AND CURRENT ROW) AS upto{i}, "
        f"sum(neg{i}) OVER ({by_score} CURRENT ROW AND CURRENT ROW) AS tied{i}"
        for i in n
    )
    per_bucket = ", ".join(
        f"coalesce(sum(2 * upto{i} - tied{i}) FILTER (WHERE pos{i}), 0) AS within{i}, "
        f"count(*) FILTER (WHERE pos{i}) AS npos{i}, sum(neg{i}) AS nneg{i}"
        for i in n
    )
    lower = "ORDER BY bucket ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
    below = ", ".join(
        f"within{i}, npos{i}, nneg{i}, coalesce(sum(nneg{i}) OVER (PARTITION BY {k} {lower}), 0) AS below{i}"
        for i in n
    )
    # Integer arithmetic until the final division keeps the sum exact.
    sums = ", ".join(
        f"CAST(sum(within{i} + 2 * npos{i} * below{i}) AS DECIMAL(38, 0)), "
        f"CAST(2 * sum(npos{i}) * sum(nneg{i}) AS DECIMAL(38, 0))"
        for i in n
    )
    rows = con.execute(f"""
        WITH flagged AS (
            SELECT {k}, score, {bucket} AS bucket, {flags} FROM joined WHERE {where}
        ), ranked AS (
            SELECT {k}, bucket, {frames} FROM flagged
        ), buckets AS (
            SELECT {k}, bucket, {per_bucket} FROM ranked GROUP BY ALL
        ), counted AS (
            SELECT {k}, {below} FROM buckets
        )
        SELECT {k}, {sums} FROM counted GROUP BY ALL
    """).fetchall()
    result: list[dict[Key, float | None]] = [{} for _ in subsets]
    for row in rows:
        key, values = _split(row, len(keys))
        for i, aucs in enumerate(result):
            num, den = values[2 * i], values[2 * i + 1]
            if den:
                aucs[key] = int(num) / int(den)
    return result


def _reliability(con: Any, keys: Sequence[str], where: str) -> dict[Key, tuple[ReliabilityBin, ...]]:
    expression, edges = _bin_expression()
    rows = con.execute(f"""
        SELECT {_select_keys(keys)}, {expression} AS bin, count(*), avg(score), avg(label_num)
        FROM joined WHERE {where} GROUP BY ALL ORDER BY ALL
    """).fetchall()
    result: dict[Key, list[ReliabilityBin]] = {}
    for row in rows:
        key, (b, count, mean_score, positive_rate) = _split(row, len(keys))
        entry = ReliabilityBin(edges[b], edges[b + 1], int(count), float(mean_score), float(positive_rate))
        result.setdefault(key, []).append(entry)
    return {key: tuple(table) for key, table in result.items()}


def regression(
    con: Any, keys: Sequence[str], models: Sequence[str], where: str = "TRUE"
) -> dict[Key, Regression]:
    """MAE, RMSE and R2 per group for the given models (numeric labels), rows matching ``where``."""
    rows = con.execute(f"""
        SELECT {_select_keys(keys)}, count(*), avg(abs(score - label_num)), avg(power(score - label_num, 2)),
               sum(power(label_num - score, 2)), var_pop(label_num) * count(*)
        FROM joined WHERE {_EVALUABLE} AND {_models_filter(models)} AND ({where}) GROUP BY ALL
    """).fetchall()
    result: dict[Key, Regression] = {}
    for row in rows:
        key, (n, mae, mse, ss_res, ss_tot) = _split(row, len(keys))
        r2 = 1.0 - ss_res / ss_tot if ss_tot else None
        result[key] = Regression(int(n), float(mae), float(mse) ** 0.5, r2)
    return result
