"""Cost per 1,000 predictions and latency percentiles, against the targets declared on the model.

Cost comes from the ``cost`` column of the prediction records (what each call cost); latency
from ``duration_s``. Percentiles interpolate linearly between order statistics (as
``numpy.percentile``). The latency budget is compared with p95, the cost target with cost/1K.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modeltel.loop._dialect import dialect, finite
from modeltel.loop._metrics import Key

__all__ = ["CostLatency", "cost_latency", "declared_targets"]


@dataclass(frozen=True)
class CostLatency:
    """Cost and latency of one group, with the declared targets and whether they were met."""

    predictions: int
    cost: float
    cost_per_1k: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    latency_budget_ms: float | None = None
    cost_per_1k_target: float | None = None

    @property
    def latency_missed(self) -> bool:
        """p95 latency is over the declared budget."""
        if self.p95_ms is None or self.latency_budget_ms is None:
            return False
        return self.p95_ms > self.latency_budget_ms

    @property
    def cost_missed(self) -> bool:
        """Cost per 1K is over the declared target."""
        if self.cost_per_1k is None or self.cost_per_1k_target is None:
            return False
        return self.cost_per_1k > self.cost_per_1k_target


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def declared_targets(con: Any) -> dict[tuple[str, str], tuple[float | None, float | None]]:
    """(latency budget ms, cost per 1K target) per (model, version), None where undeclared."""
    rows = con.execute(
        "SELECT model, version, latency_budget_ms, cost_per_1k_target FROM model_info"
    ).fetchall()
    return {(m, v): (_number(budget), _number(target)) for m, v, budget, target in rows}


def cost_latency(
    con: Any, keys: Sequence[str], where: str = "TRUE", table: str = "joined"
) -> dict[Key, CostLatency]:
    """Cost and latency per group of ``table`` (``keys`` must start with model, version)."""
    rows = con.execute(
        f"SELECT {', '.join(keys)}, count(*), sum(cost) FROM {table} WHERE {where} GROUP BY ALL"
    ).fetchall()
    timed = f"{table} WHERE ({where}) AND {finite('duration_s')}"
    latency_query = dialect(con).grouped_quantiles(keys, "duration_s", timed, (0.5, 0.95, 0.99))
    latencies = {tuple(row[:-1]): row[-1] for row in con.execute(latency_query).fetchall()}
    targets = declared_targets(con)
    result: dict[Key, CostLatency] = {}
    for row in rows:
        key, (count, cost) = tuple(row[: len(keys)]), row[len(keys) :]
        quantiles = latencies.get(key)
        p50, p95, p99 = (None, None, None) if quantiles is None else (q * 1000.0 for q in quantiles)
        budget, target = targets.get((key[0], key[1]), (None, None))
        per_1k = 1000.0 * float(cost) / count if count else None
        result[key] = CostLatency(int(count), float(cost), per_1k, p50, p95, p99, budget, target)
    return result
