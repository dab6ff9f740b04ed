"""Training/serving parity: do two feature pipelines agree, and does production agree with offline?

``assert_same_features`` runs in a user's test suite (values may appear in its message).
``replay`` runs the offline pipeline over sampled production records and measures the skew,
per feature and for the score.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel

_ABSENT = object()


def _as_mapping(features: Any) -> Mapping[str, Any]:
    if isinstance(features, Mapping):
        return features
    if isinstance(features, BaseModel):
        return dict(features)
    if dataclasses.is_dataclass(features) and not isinstance(features, type):
        return {f.name: getattr(features, f.name) for f in dataclasses.fields(features)}
    raise TypeError(
        f"a feature function must return a mapping, pydantic model or dataclass, got {type(features)}"
    )


def _number(value: Any) -> float | None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    return float(value)


def same_value(a: Any, b: Any, rtol: float, atol: float) -> bool:
    """Numbers within tolerance (NaN equals NaN), arrays element-wise, anything else by ==."""
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=rtol, abs_tol=atol)
    if isinstance(a, (list, tuple, np.ndarray)) and isinstance(b, (list, tuple, np.ndarray)):
        left, right = np.asarray(a), np.asarray(b)
        if left.shape != right.shape:
            return False
        if left.dtype.kind in "fiu" and right.dtype.kind in "fiu":
            return bool(np.allclose(left, right, rtol=rtol, atol=atol, equal_nan=True))
        return bool(np.array_equal(left, right))
    return bool(a == b)


@dataclass
class _Disagreement:
    count: int = 0
    first_input: int = -1
    training: Any = None
    serving: Any = None


def assert_same_features(
    training_fn: Callable[[Any], Any],
    serving_fn: Callable[[Any], Any],
    inputs: Iterable[Any],
    *,
    rtol: float = 1e-9,
    atol: float = 0.0,
) -> None:
    """Raise AssertionError with a per-feature diff unless both pipelines give the same features."""
    diffs: dict[str, _Disagreement] = {}
    total = 0
    for index, raw in enumerate(inputs):
        total += 1
        training, serving = _as_mapping(training_fn(raw)), _as_mapping(serving_fn(raw))
        for name in dict.fromkeys([*training, *serving]):
            a, b = training.get(name, _ABSENT), serving.get(name, _ABSENT)
            if a is _ABSENT or b is _ABSENT or not same_value(a, b, rtol, atol):
                diff = diffs.setdefault(name, _Disagreement(first_input=index, training=a, serving=b))
                diff.count += 1
    if total == 0:
        raise ValueError("assert_same_features needs at least one input")
    if diffs:
        raise AssertionError(_diff_message(diffs, total))


def _diff_message(diffs: dict[str, _Disagreement], total: int) -> str:
    lines = [f"training and serving features disagree on {len(diffs)} feature(s) over {total} input(s):"]
    for name, diff in diffs.items():
        if diff.training is _ABSENT or diff.serving is _ABSENT:
            side = "serving" if diff.training is _ABSENT else "training"
            lines.append(f"  {name}: only in {side} ({diff.count}/{total} inputs)")
        else:
            lines.append(
                f"  {name}: {diff.count}/{total} inputs differ; first at input {diff.first_input}: "
                f"training={diff.training!r} serving={diff.serving!r}"
            )
    return "\n".join(lines)


@dataclass
class Skew:
    """How far serving and offline disagree on one feature (or on the score)."""

    name: str
    compared: int = 0
    disagreeing: int = 0
    missing: int = 0  # records where only one side had the feature
    max_abs_diff: float = 0.0
    max_rel_diff: float = 0.0
    _ratios: list[float] = field(default_factory=list, repr=False)

    @property
    def mean_ratio(self) -> float:
        """Mean of serving / offline over numeric pairs with a non-zero offline value (NaN if none)."""
        return float(np.mean(self._ratios)) if self._ratios else math.nan

    def add(self, offline: Any, serving: Any, rtol: float, atol: float) -> None:
        """Fold one (offline, serving) pair into the statistics."""
        if offline is _ABSENT or serving is _ABSENT:
            self.missing += 1
            return
        self.compared += 1
        self.disagreeing += not same_value(offline, serving, rtol, atol)
        x, y = _number(offline), _number(serving)
        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y):
            diff = abs(y - x)
            self.max_abs_diff = max(self.max_abs_diff, diff)
            if x != 0:
                self.max_rel_diff = max(self.max_rel_diff, diff / abs(x))
                self._ratios.append(y / x)


@dataclass
class ReplayReport:
    """Per-feature and score skew of a replay; ``format()`` renders it as a table."""

    records: int
    features: dict[str, Skew]
    score: Skew

    def skewed_features(self) -> list[str]:
        """Features where any record disagreed or was one-sided, most disagreeing first."""
        skewed = [s for s in self.features.values() if s.disagreeing or s.missing]
        return [s.name for s in sorted(skewed, key=lambda s: -(s.disagreeing + s.missing))]

    def format(self) -> str:
        """A fixed-width table: one line per feature, then the score."""
        header = (
            f"{'feature':<24}{'compared':>10}{'disagree':>10}{'missing':>9}"
            f"{'max abs':>12}{'max rel':>12}{'ratio':>10}"
        )
        rows = [*self.features.values(), self.score]
        lines = [f"replayed {self.records} record(s)", header]
        lines += [
            f"{s.name:<24}{s.compared:>10}{s.disagreeing:>10}{s.missing:>9}{s.max_abs_diff:>12.4g}"
            f"{s.max_rel_diff:>12.4g}{s.mean_ratio:>10.4g}"
            for s in rows
        ]
        return "\n".join(lines)


def replay(
    records: Iterable[Mapping[str, Any]],
    feature_fn: Callable[[Any], Any],
    predict_fn: Callable[[Mapping[str, Any]], Any] | None = None,
    *,
    rtol: float = 1e-9,
    atol: float = 0.0,
) -> ReplayReport:
    """Replay sampled production records through the offline feature function and model.

    Each record is ``{"features": {...}, "score": float | None, "prediction_id": str, "raw": ...}``.
    When a record carries ``raw``, ``feature_fn(raw)`` gives the offline features, compared with the
    logged serving features. ``predict_fn(offline features)`` (or of the logged features when there
    is no ``raw``, which isolates model skew) is compared with the logged score.
    """
    report = ReplayReport(records=0, features={}, score=Skew("score"))
    for record in records:
        report.records += 1
        serving = _as_mapping(record.get("features") or {})
        offline = serving
        if record.get("raw") is not None:
            offline = _as_mapping(feature_fn(record["raw"]))
            for name in dict.fromkeys([*offline, *serving]):
                skew = report.features.setdefault(name, Skew(name))
                skew.add(offline.get(name, _ABSENT), serving.get(name, _ABSENT), rtol, atol)
        if predict_fn is not None and record.get("score") is not None:
            report.score.add(float(predict_fn(offline)), record["score"], rtol, atol)
    return report
