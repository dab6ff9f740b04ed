"""Operational drift: broken inputs and failing calls, kept apart from statistical drift.

A schema violation or a rise in errors is a pipeline problem with a fix (a renamed column, a
dead upstream), not a change in the world, so it is reported on its own:

* per window, the error rate (outcome ``error``) and the rate of every other non-ok outcome,
  from the prediction records (all predictions);
* per window, the share of sampled feature records carrying each ``feature:kind`` violation;
* totals of the ``ml.contract.violations`` counter by feature and kind, from ``metrics.jsonl``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from modeltel import _names as n
from modeltel._export.otlp_flat import flat_metrics, latest_points
from modeltel._export.otlp_json import METRICS_FILE, _read_file
from modeltel.loop._dialect import dialect
from modeltel.loop._metrics import Key

__all__ = ["Operational", "WindowHealth", "operational", "violation_totals"]


@dataclass(frozen=True)
class WindowHealth:
    """Outcome and violation rates in one window."""

    predictions: int
    outcome_rates: dict[str, float]
    sampled_records: int
    violation_rates: dict[str, float]

    @property
    def error_rate(self) -> float:
        """Share of predictions whose outcome is ``error``."""
        return self.outcome_rates.get(n.ERROR, 0.0)


@dataclass
class Operational:
    """Operational health of one group per window, plus counter totals per ``feature:kind``."""

    windows: dict[str, WindowHealth] = field(default_factory=dict)
    violation_totals: dict[str, int] = field(default_factory=dict)


def operational(con: Any, keys: Sequence[str], window: str) -> dict[Key, Operational]:
    """Outcome and violation rates per group and window (windows named by the SQL ``window``)."""
    k = ", ".join(keys)
    width = len(keys)
    outcomes: dict[tuple[Key, str], dict[str, int]] = {}
    query = f"SELECT {k}, {window} AS win, coalesce(outcome, 'unknown'), count(*) FROM joined GROUP BY ALL"
    for row in con.execute(f"SELECT * FROM ({query}) WHERE win IS NOT NULL").fetchall():
        outcomes.setdefault((tuple(row[:width]), str(row[width])), {})[row[width + 1]] = int(row[width + 2])
    records: dict[tuple[Key, str], int] = {}
    violations: dict[tuple[Key, str], dict[str, int]] = {}
    per_record = f"""
        SELECT DISTINCT {k}, {window} AS win, prediction_id, ts, violations FROM feature_values
        WHERE {window} IS NOT NULL
    """
    sizes = f"SELECT {k}, win, count(*) FROM ({per_record}) GROUP BY ALL"
    for row in con.execute(sizes).fetchall():
        records[(tuple(row[:width]), str(row[width]))] = int(row[width + 1])
    kinds = f"SELECT {k}, win, {dialect(con).explode('violations')} AS v FROM ({per_record})"
    for row in con.execute(f"SELECT {k}, win, v, count(*) FROM ({kinds}) GROUP BY ALL").fetchall():
        violations.setdefault((tuple(row[:width]), str(row[width])), {})[row[width + 1]] = int(row[width + 2])
    result: dict[Key, Operational] = {}
    for (key, win), counts in outcomes.items():
        total = sum(counts.values())
        sampled = records.get((key, win), 0)
        found = violations.get((key, win), {})
        health = WindowHealth(
            predictions=total,
            outcome_rates={o: c / total for o, c in sorted(counts.items()) if o != n.OK},
            sampled_records=sampled,
            violation_rates={v: c / sampled for v, c in sorted(found.items())} if sampled else {},
        )
        result.setdefault(key, Operational()).windows[win] = health
    return result


def violation_totals(folder: Path) -> dict[tuple[str, str], dict[str, int]]:
    """``ml.contract.violations`` counter totals per (model, version), keyed ``feature:kind``."""
    points, _ = _read_file(folder / METRICS_FILE, ExportMetricsServiceRequest, flat_metrics)
    totals: dict[tuple[str, str], dict[str, int]] = {}
    for point in latest_points(p for p in points if p["name"] == n.M_VIOLATIONS):
        attrs = point["attributes"]
        model_key = (str(attrs.get(n.MODEL_NAME, "")), str(attrs.get(n.MODEL_VERSION, "")))
        label = f"{attrs.get(n.FEATURE_NAME, '?')}:{attrs.get(n.VIOLATION_KIND, '?')}"
        bucket = totals.setdefault(model_key, {})
        bucket[label] = bucket.get(label, 0) + int(point["value"])
    return totals
