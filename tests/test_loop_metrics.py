"""Every quality metric equals scikit-learn's (or numpy's) value on the same data, to 1e-9."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from sklearn.calibration import calibration_curve
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    brier_score_loss,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)

from modeltel.loop._cost import cost_latency
from modeltel.loop._engine import connect
from modeltel.loop._metrics import classification, classification_within, counts, regression

KEYS = ["model", "version"]
KEY = ("m", "1")
TOL = 1e-9


@pytest.fixture
def con() -> Iterator[Any]:
    connection = connect()
    yield connection
    connection.close()


def _joined(con: Any, scores: np.ndarray, labels: np.ndarray, **extra: Any) -> None:
    n = scores.size
    table = pa.table(
        {
            "model": ["m"] * n,
            "version": ["1"] * n,
            "score": scores,
            "label_num": labels.astype(np.float64),
            "label_str": [str(v) for v in labels],
            "matured": [True] * n,
            "outcome": extra.get("outcome", ["ok"] * n),
            "duration_s": extra.get("duration_s", np.full(n, 0.001)),
            "cost": extra.get("cost", np.zeros(n)),
        }
    )
    con.register("joined_arrow", table)
    con.execute("CREATE OR REPLACE TABLE joined AS SELECT * FROM joined_arrow")


def _binary(seed: int, n: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    scores = np.clip(rng.normal(0.3 + 0.3 * labels, 0.2), 0.0, 1.0)
    return scores, labels


def test_classification_metrics_equal_sklearn(con: Any) -> None:
    """AUC, log loss, Brier, precision, recall, F1, base rate and mean score match sklearn."""
    scores, labels = _binary(1)
    _joined(con, scores, labels)
    m = classification(con, KEYS, ["m"], 0.5)[KEY]
    predicted = scores >= 0.5
    assert m.roc_auc == pytest.approx(roc_auc_score(labels, scores), abs=TOL)
    assert m.log_loss == pytest.approx(log_loss(labels, scores), abs=TOL)
    assert m.brier == pytest.approx(brier_score_loss(labels, scores), abs=TOL)
    assert m.precision == pytest.approx(precision_score(labels, predicted), abs=TOL)
    assert m.recall == pytest.approx(recall_score(labels, predicted), abs=TOL)
    assert m.f1 == pytest.approx(f1_score(labels, predicted), abs=TOL)
    assert (m.base_rate, m.mean_score) == pytest.approx((labels.mean(), scores.mean()), abs=TOL)


def test_threshold_changes_precision_recall_as_sklearn(con: Any) -> None:
    """A non-default threshold gives sklearn's precision and recall at that threshold."""
    scores, labels = _binary(2)
    _joined(con, scores, labels)
    m = classification(con, KEYS, ["m"], 0.7)[KEY]
    predicted = scores >= 0.7
    assert (m.precision, m.recall) == pytest.approx(
        (precision_score(labels, predicted), recall_score(labels, predicted)), abs=TOL
    )


def test_reliability_table_and_ece_match_calibration_curve(con: Any) -> None:
    """The reliability bins equal calibration_curve(uniform, 10) and ECE is their weighted gap."""
    scores, labels = _binary(3)
    scores[:10] = np.linspace(0.0, 1.0, 11)[:10]  # values exactly on bin edges
    _joined(con, scores, labels)
    m = classification(con, KEYS, ["m"], 0.5)[KEY]
    prob_true, prob_pred = calibration_curve(labels, scores, n_bins=10, strategy="uniform")
    bins = np.searchsorted(np.linspace(0.0, 1.0, 11)[1:-1], scores)
    sizes = np.bincount(bins, minlength=10)
    expected_ece = float(np.sum(sizes[sizes > 0] / scores.size * np.abs(prob_true - prob_pred)))
    assert [b.positive_rate for b in m.reliability] == pytest.approx(list(prob_true), abs=TOL)
    assert [b.mean_score for b in m.reliability] == pytest.approx(list(prob_pred), abs=TOL)
    assert [b.count for b in m.reliability] == [int(s) for s in sizes if s > 0]
    assert m.ece == pytest.approx(expected_ece, abs=TOL)


def test_tied_scores_auc_counts_ties_half(con: Any) -> None:
    """AUC with heavily tied scores equals sklearn's."""
    scores, labels = _binary(4)
    scores = np.round(scores, 1)
    _joined(con, scores, labels)
    assert classification(con, KEYS, ["m"], 0.5)[KEY].roc_auc == pytest.approx(
        roc_auc_score(labels, scores), abs=TOL
    )


def test_auc_is_exact_across_score_buckets(con: Any) -> None:
    """The AUC's sort is split into score buckets: scores on, just below and just above every
    bucket edge, negative, at and beyond 1, and a crowd inside one narrow bucket still give
    sklearn's AUC."""
    rng = np.random.default_rng(8)
    edges = np.arange(0, 1025) / 1024
    scores = np.concatenate(
        [
            edges,
            np.nextafter(edges, -1.0),
            np.nextafter(edges, 2.0),
            [-3.0, -1e-300, -0.0, 1.0, 1.0, 1.5, 1e9],
            rng.random(3000) * 1e-5,
        ]
    )
    labels = (rng.random(scores.size) < 0.4).astype(int)
    _joined(con, scores, labels)
    assert classification(con, KEYS, ["m"], 0.5)[KEY].roc_auc == pytest.approx(
        roc_auc_score(labels, scores), abs=1e-12
    )


def test_each_subset_in_one_pass_equals_sklearn_on_its_rows(con: Any) -> None:
    """Several row filters share one sort by score, yet each subset's AUC and other metrics
    are sklearn's on that subset's rows alone: tied scores across subsets, a subset holding one
    class (AUC undefined) and a subset matching no row."""
    scores, labels = _binary(6)
    scores = np.round(scores, 2)  # ties inside and across the subsets
    _joined(con, scores, labels, cost=np.arange(scores.size, dtype=np.float64))
    first = np.arange(scores.size) < 1500
    subsets = {
        "all": "TRUE",
        "first": "cost < 1500",
        "positives": "label_num = 1",
        "none": "cost < 0",
    }
    found = classification_within(con, KEYS, ["m"], 0.5, subsets)
    for name, rows in (("all", np.full(scores.size, True)), ("first", first)):
        m = found[name][KEY]
        assert m.n == int(rows.sum())
        assert m.roc_auc == pytest.approx(roc_auc_score(labels[rows], scores[rows]), abs=TOL)
        assert m.log_loss == pytest.approx(log_loss(labels[rows], scores[rows]), abs=TOL)
    assert found["first"][KEY] == classification(con, KEYS, ["m"], 0.5, "cost < 1500")[KEY]
    assert found["positives"][KEY].roc_auc is None
    assert found["none"] == {}


def test_all_equal_scores_give_auc_one_half(con: Any) -> None:
    """Constant scores: AUC 0.5 as sklearn, log loss and Brier as sklearn."""
    _, labels = _binary(5)
    scores = np.full(labels.size, 0.3)
    _joined(con, scores, labels)
    m = classification(con, KEYS, ["m"], 0.5)[KEY]
    assert m.roc_auc == pytest.approx(roc_auc_score(labels, scores), abs=TOL)
    assert m.log_loss == pytest.approx(log_loss(labels, scores), abs=TOL)
    assert m.brier == pytest.approx(brier_score_loss(labels, scores), abs=TOL)


def test_single_class_auc_is_undefined_and_other_metrics_match(con: Any) -> None:
    """One class only: AUC is None (sklearn: undefined), log loss and Brier still match."""
    scores, _ = _binary(6)
    labels = np.zeros(scores.size, dtype=int)
    _joined(con, scores, labels)
    m = classification(con, KEYS, ["m"], 0.5)[KEY]
    with pytest.warns(UndefinedMetricWarning):
        assert np.isnan(roc_auc_score(labels, scores))
    assert m.roc_auc is None
    assert m.log_loss == pytest.approx(log_loss(labels, scores, labels=[0, 1]), abs=TOL)
    assert m.brier == pytest.approx(brier_score_loss(labels, scores, pos_label=1), abs=TOL)
    assert (m.recall, m.f1) == (None, 0.0 if (scores >= 0.5).any() else None)


def test_no_predicted_positives_leaves_precision_undefined(con: Any) -> None:
    """No score reaches the threshold: precision None where sklearn's is NaN (zero_division)."""
    scores, labels = _binary(7)
    _joined(con, scores * 0.4, labels)
    m = classification(con, KEYS, ["m"], 0.5)[KEY]
    assert np.isnan(precision_score(labels, scores * 0.4 >= 0.5, zero_division=np.nan))
    assert m.precision is None


def test_nan_scores_are_excluded_and_counted(con: Any) -> None:
    """Non-finite scores are left out of every metric and counted in nonfinite_scores."""
    scores, labels = _binary(8)
    broken = scores.copy()
    broken[::7] = np.nan
    broken[1::50] = np.inf
    _joined(con, broken, labels)
    finite = np.isfinite(broken)
    m = classification(con, KEYS, ["m"], 0.5)[KEY]
    assert counts(con, KEYS)[KEY].nonfinite_scores == int((~finite).sum())
    assert m.n == int(finite.sum())
    assert m.roc_auc == pytest.approx(roc_auc_score(labels[finite], broken[finite]), abs=TOL)
    assert m.log_loss == pytest.approx(log_loss(labels[finite], broken[finite]), abs=TOL)


def test_regression_metrics_equal_sklearn(con: Any) -> None:
    """MAE, RMSE and R2 match sklearn."""
    rng = np.random.default_rng(9)
    labels = rng.normal(100.0, 15.0, 3000)
    scores = labels + rng.normal(0.0, 5.0, labels.size)
    _joined(con, scores, labels)
    r = regression(con, KEYS, ["m"])[KEY]
    assert r.mae == pytest.approx(mean_absolute_error(labels, scores), abs=TOL)
    assert r.rmse == pytest.approx(np.sqrt(mean_squared_error(labels, scores)), abs=TOL)
    assert r.r2 == pytest.approx(r2_score(labels, scores), abs=TOL)


def test_constant_labels_leave_r2_undefined(con: Any) -> None:
    """Every label equal: R2 None where sklearn's unforced R2 is not finite."""
    labels = np.full(100, 3.0)
    scores = np.linspace(2.0, 4.0, 100)
    _joined(con, scores, labels)
    with np.errstate(divide="ignore", invalid="ignore"):
        assert not np.isfinite(r2_score(labels, scores, force_finite=False))
    assert regression(con, KEYS, ["m"])[KEY].r2 is None


def test_latency_percentiles_and_cost_per_1k_match_numpy(con: Any) -> None:
    """p50/p95/p99 equal numpy.percentile (linear) in ms; cost per 1K is 1000 * total / count."""
    rng = np.random.default_rng(10)
    durations, cost = rng.gamma(2.0, 0.01, 5000), rng.uniform(0.0, 0.002, 5000)
    scores, labels = _binary(10, 5000)
    _joined(con, scores, labels, duration_s=durations, cost=cost)
    con.execute(
        "CREATE TABLE model_info AS SELECT 'm' AS model, '1' AS version, NULL AS latency_budget_ms, "
        "NULL AS cost_per_1k_target"
    )
    c = cost_latency(con, KEYS)[KEY]
    expected = np.percentile(durations, [50, 95, 99]) * 1000.0
    assert (c.p50_ms, c.p95_ms, c.p99_ms) == pytest.approx(tuple(expected), abs=TOL)
    assert c.cost_per_1k == pytest.approx(1000.0 * cost.sum() / cost.size, abs=TOL)
