"""Quality before the labels arrive: what a classifier's scores say about its own quality.

If the scores are calibrated (a score of 0.8 is right 80% of the time), each prediction is a
positive with probability equal to its score, so the expected confusion matrix, ROC AUC, log
loss and Brier score follow from the scores alone (confidence-based performance estimation, as
NannyML's CBPE does). Labels take days or weeks to mature; this estimate is available the day
the predictions are made.

The assumption is checked where labels exist: on matured periods the estimate is compared with
the realized value, and the reference window's calibration error says whether the scores were
calibrated to begin with. A period whose estimate and realized value part by more than
``GAP_TOLERANCE`` (or more than three standard errors of the realized value, whichever is
larger) is itself a signal: the model's calibration moved, and its unlabelled estimates are
unreliable from then on.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ESTIMABLE",
    "GAP_TOLERANCE",
    "MAX_REFERENCE_ECE",
    "estimate",
    "expected_roc_auc",
    "gap_is_large",
]

GAP_TOLERANCE: Final = 0.02
MAX_REFERENCE_ECE: Final = 0.05  # above this the scores are not calibrated enough to estimate from
ESTIMABLE: Final = ("roc_auc", "log_loss", "brier", "precision", "recall", "f1")
_CLIP: Final = 1e-15


def _scores(values: ArrayLike) -> NDArray[np.float64]:
    s = np.asarray(values, dtype=np.float64)
    return np.clip(s[np.isfinite(s)], 0.0, 1.0)


def expected_roc_auc(scores: ArrayLike) -> float | None:
    """ROC AUC expected when each prediction is positive with probability its score.

    Over every pair of distinct predictions weighted by P(i positive) P(j negative): the share
    where i scores above j (ties count half). O(n log n) through sorted cumulative sums.
    """
    s = np.sort(_scores(scores))
    if s.size < 2:
        return None
    neg = 1.0 - s
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])  # sum of (1 - s_j) over j before i
    # Ties: predictions with equal scores sit side by side; each is above half of the others.
    _, first, counts = np.unique(s, return_index=True, return_counts=True)
    strictly_below = np.repeat(below[first], counts)
    tied_others = np.repeat(np.add.reduceat(neg, first), counts) - neg
    numerator = float(np.sum(s * (strictly_below + 0.5 * tied_others)))
    denominator = float(s.sum() * neg.sum() - np.sum(s * neg))
    return numerator / denominator if denominator > 0 else None


def estimate(metric: str, scores: ArrayLike, threshold: float = 0.5) -> float | None:
    """The expected value of ``metric`` (one of :data:`ESTIMABLE`) from ``scores`` alone."""
    s = _scores(scores)
    if s.size == 0 or metric not in ESTIMABLE:
        return None
    if metric == "roc_auc":
        return expected_roc_auc(s)
    if metric == "log_loss":
        p = np.clip(s, _CLIP, 1 - _CLIP)
        return float(np.mean(-(p * np.log(p) + (1 - p) * np.log(1 - p))))
    if metric == "brier":
        return float(np.mean(s * (1 - s)))
    positive = s >= threshold
    tp, fp = float(s[positive].sum()), float((1 - s[positive]).sum())
    fn = float(s[~positive].sum())
    precision = tp / (tp + fp) if tp + fp > 0 else None
    recall = tp / (tp + fn) if tp + fn > 0 else None
    if metric == "precision":
        return precision
    if metric == "recall":
        return recall
    return 2 * tp / (2 * tp + fp + fn) if tp > 0 else None


def gap_is_large(estimated: float, realized: float, labelled: int) -> bool:
    """Whether a realized value is too far from its estimate to be the labels' sampling noise.

    The realized value of a metric in [0, 1] over ``labelled`` predictions has a standard error
    of at most ~0.5 / sqrt(n) (AUC's is smaller still); three of those, or ``GAP_TOLERANCE``.
    """
    if labelled <= 0:
        return False
    tolerance = max(GAP_TOLERANCE, 1.5 / math.sqrt(labelled))
    return abs(estimated - realized) > tolerance
