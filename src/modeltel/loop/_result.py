"""The evaluation's result: plain dataclasses, turned into JSON by :func:`to_jsonable`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from modeltel.loop._backtest import SignalTrust
from modeltel.loop._cost import CostLatency
from modeltel.loop._drift import DriftSignal
from modeltel.loop._metrics import Classification, Counts, Regression
from modeltel.loop._operational import Operational

__all__ = [
    "HOW_TO_DECLARE",
    "HIGHER_IS_BETTER",
    "Comparison",
    "Evaluation",
    "GroupReport",
    "InventoryEntry",
    "PeriodPoint",
    "ScoreHistogram",
    "to_jsonable",
]

# What `modeltel inventory` says of a field left undeclared: the keyword that declares it.
HOW_TO_DECLARE: Final = {
    "owner": 'owner="risk-team"',
    "purpose": 'purpose="block card fraud at checkout"',
    "metric": 'metric="roc_auc"',
    "label_source": 'label_source="chargebacks table"',
    "label_delay": 'label_delay="30d"',
    "latency_budget_ms": "latency_budget_ms=50",
    "cost_per_1k_target": "cost_per_1k_target=0.40",
}

HIGHER_IS_BETTER: Final = frozenset({"roc_auc", "precision", "recall", "f1", "r2"})


@dataclass
class PeriodPoint:
    """One period's figures; ``outside_band`` names the series that left their trailing band."""

    start_ns: int
    predictions: int
    labelled: int
    label_coverage: float | None
    quality: float | None
    mean_score: float | None
    error_rate: float | None
    cost_per_1k: float | None
    p95_ms: float | None
    drift: dict[str, float | None] = field(default_factory=dict)
    bands: dict[str, tuple[float, float]] = field(default_factory=dict)
    outside_band: list[str] = field(default_factory=list)
    # The primary metric estimated from the scores alone (see ``_estimate``), labels or not;
    # ``estimate_off``: realized and estimated parted here (calibration moved), or did before.
    estimated_quality: float | None = None
    estimate_off: bool = False
    # Every quality metric of the period's matured, labelled predictions (classification: roc_auc,
    # log_loss, brier, ece, precision, recall, f1; regression: mae, rmse, r2), and how many matured.
    metrics: dict[str, float | None] = field(default_factory=dict)
    matured: int = 0

    def series(self, name: str) -> float | None:
        """The value of series ``name`` (a field, or ``psi:<signal>`` / ``ks:<signal>``)."""
        if name in self.drift:
            return self.drift[name]
        value = getattr(self, name, None)
        return value if isinstance(value, (int, float)) else None


@dataclass(frozen=True)
class ScoreHistogram:
    """Score shares in equal-width bins over [lo, hi], reference and current window."""

    edges: tuple[float, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]


@dataclass
class GroupReport:
    """Everything evaluated for one model/version (and tenant, with ``--by-tenant``)."""

    model: str
    version: str
    tenant: str | None
    task: str
    primary_metric: str | None
    counts: Counts
    classification: Classification | None = None
    regression: Regression | None = None
    drift: list[DriftSignal] = field(default_factory=list)
    operational: Operational | None = None
    cost: CostLatency | None = None
    periods: list[PeriodPoint] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    backtest: list[SignalTrust] = field(default_factory=list)
    histogram: ScoreHistogram | None = None

    @property
    def label(self) -> str:
        """``model@version`` (plus ``/tenant``)."""
        base = f"{self.model}@{self.version}"
        return base if self.tenant is None else f"{base}/{self.tenant or '-'}"

    def primary_value(self) -> float | None:
        """The primary metric over every matured, labelled prediction."""
        source = self.classification or self.regression
        value = getattr(source, self.primary_metric or "", None) if source is not None else None
        return value if isinstance(value, float) else None


@dataclass(frozen=True)
class Comparison:
    """A version against the model's champion: lift of the primary metric and what it costs."""

    model: str
    baseline: str
    version: str
    metric: str
    baseline_value: float | None
    value: float | None
    lift: float | None
    relative_lift_pct: float | None
    cost_per_1k_delta: float | None
    cost_per_1pct_lift: float | None


@dataclass(frozen=True)
class InventoryEntry:
    """One model/version with its declared truth table and what is missing or missed."""

    model: str
    version: str
    truth: dict[str, str | None]
    predictions: int
    first_seen_ns: int | None
    last_seen_ns: int | None
    cost: CostLatency | None
    missing: tuple[str, ...]
    missed: tuple[str, ...]


@dataclass
class Evaluation:
    """The result of ``evaluate``: windows used, one report per group, comparisons, inventory."""

    as_of_ns: int
    maturation_ns: int
    period_ns: int
    reference: tuple[int, int] | str
    current: tuple[int, int]
    threshold: float
    groups: list[GroupReport] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    inventory: list[InventoryEntry] = field(default_factory=list)
    outcomes_loaded: int = 0
    """Outcome rows read: recorded outcomes, ``--labels`` files, a tables folder's ``outcomes/``."""
    skipped_lines: dict[str, int] = field(default_factory=dict)
    """Lines skipped because they are not JSON (e.g. a truncated last line), per logs file name."""
    period_origin_ns: int = 0
    """The instant periods are counted from (Monday 00:00 UTC for whole weeks by default)."""
    labels_matched: int = 0
    """Predictions with a label (from ``--labels`` files or recorded outcomes), matured or not."""


def to_jsonable(value: Any) -> Any:
    """Dataclasses, numpy values and tuples as JSON-ready data; non-finite floats become None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in ("label_coverage", "error_rate", "latency_missed", "cost_missed"):
            if hasattr(type(value), name) and isinstance(getattr(type(value), name), property):
                data[name] = to_jsonable(getattr(value, name))
        return data
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
