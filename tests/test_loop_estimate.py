"""Quality estimated from scores before labels arrive (``loop/_estimate.py``), checked on matured
periods: within 0.01 of realized AUC on calibrated data; a calibration shift is flagged."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from modeltel.loop import EvaluateOptions, evaluate
from modeltel.loop._estimate import estimate, expected_roc_auc
from modeltel.loop._result import GroupReport
from modeltel.loop._synthetic import append_records, outcome_record, prediction_columns, prediction_record
from modeltel.loop._text import format_evaluation

DAY = 86_400 * 1_000_000_000
DAY0 = 1_704_067_200 * 1_000_000_000
DAYS = 14
PER_DAY = 20_000
LABELLED_DAYS = 11  # the last three days' labels have not arrived yet


def _pairwise_auc(scores: list[float]) -> float:
    """The definition: pairs of distinct predictions weighted by P(i positive) P(j negative)."""
    num = den = 0.0
    for i, j in itertools.permutations(range(len(scores)), 2):
        weight = scores[i] * (1 - scores[j])
        den += weight
        num += weight * (1.0 if scores[i] > scores[j] else 0.5 if scores[i] == scores[j] else 0.0)
    return num / den


@pytest.mark.parametrize("seed", range(5))
def test_expected_auc_is_the_pairwise_definition(seed: int) -> None:
    """The O(n log n) form equals the O(n^2) definition, ties included (scores rounded)."""
    scores = np.round(np.random.default_rng(seed).beta(2, 5, 60), 1).tolist()
    assert expected_roc_auc(scores) == pytest.approx(_pairwise_auc(scores), abs=1e-12)


def test_expected_confusion_metrics_on_known_scores() -> None:
    """Scores 0.9 and 0.2 at threshold 0.5: expected TP 0.9, FP 0.1, FN 0.2."""
    assert estimate("precision", [0.9, 0.2]) == pytest.approx(0.9)
    assert estimate("recall", [0.9, 0.2]) == pytest.approx(0.9 / 1.1)
    assert estimate("f1", [0.9, 0.2]) == pytest.approx(1.8 / 2.1)
    assert estimate("brier", [0.9, 0.2]) == pytest.approx((0.09 + 0.16) / 2)
    assert estimate("ece", [0.9, 0.2]) is None  # not estimable: it is the assumption itself


def _write(
    folder: Path, label_of: Callable[[np.ndarray, np.ndarray, int], np.ndarray], seed: int = 0
) -> None:
    rng = np.random.default_rng(seed)
    records = []
    for day in range(DAYS):
        scores = rng.beta(2.0, 5.0, PER_DAY)
        labels = label_of(rng.random(PER_DAY), scores, day)
        times = DAY0 + day * DAY + np.sort(rng.integers(0, DAY, PER_DAY))
        ids = [f"d{day}-{i}" for i in range(PER_DAY)]
        columns = prediction_columns(ids, times.tolist(), scores.tolist())
        records.append(prediction_record("fraud", "1", columns))
        if day < LABELLED_DAYS:
            for i in range(PER_DAY):
                records.append(outcome_record(int(labels[i]), at_ns=int(times[i]) + 1, prediction_id=ids[i]))
    append_records(folder, records, per_line=2_000)


def _evaluate(folder: Path) -> GroupReport:
    options = EvaluateOptions(reference="7d", period="1d", maturation="0s")
    (group,) = evaluate(folder, options).groups
    return group


def test_calibrated_scores_estimate_auc_within_a_hundredth(tmp_path: Path) -> None:
    """Labels drawn with probability equal to the score: every labelled period's estimate is within
    0.01 of its realized AUC, unlabelled periods still get one, and nothing is flagged."""
    _write(tmp_path, lambda u, s, day: u < s)
    group = _evaluate(tmp_path)
    assert len(group.periods) == DAYS
    labelled = [p for p in group.periods if p.quality is not None]
    assert len(labelled) == LABELLED_DAYS
    for p in labelled:
        assert p.estimated_quality is not None
        assert abs(p.estimated_quality - p.quality) < 0.01
    unlabelled = group.periods[LABELLED_DAYS:]
    assert all(p.quality is None and p.estimated_quality is not None for p in unlabelled)
    assert not any(p.estimate_off for p in group.periods)
    assert not any("calibration moved" in w for w in group.warnings)


def test_a_calibration_shift_is_flagged(tmp_path: Path) -> None:
    """From day 8 the scores overstate risk (a positive is now half as likely at every score):
    the realized AUC parts from the estimate there, those periods and all later estimates are
    marked off, and the report says why."""
    _write(tmp_path, lambda u, s, day: u < (s if day < 8 else s * s))
    group = _evaluate(tmp_path)
    assert not any(p.estimate_off for p in group.periods[:8])
    assert all(p.estimate_off for p in group.periods[8:])
    (warning,) = [w for w in group.warnings if "calibration moved" in w]
    assert warning.startswith("2024-01-09")
    report = format_evaluation(evaluate(tmp_path, EvaluateOptions(period="1d", maturation="0s")))
    assert "UNRELIABLE: calibration moved" in report


def test_scores_never_calibrated_make_every_estimate_unreliable(tmp_path: Path) -> None:
    """Scores that overstate risk from the start: the reference window's calibration error says
    so, and no period's estimate is offered as reliable."""
    _write(tmp_path, lambda u, s, day: u < s * s)
    group = _evaluate(tmp_path)
    assert all(p.estimate_off for p in group.periods)
    assert any("not calibrated in the reference window" in w for w in group.warnings)
