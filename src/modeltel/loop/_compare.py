"""Version against version: lift of the primary metric and the cost of each point of it.

Each model's champion is the version with the most evaluated predictions; every other version
is compared with it on the primary metric over all matured, labelled predictions. Lift is the
improvement (positive = better, whichever direction the metric runs), relative lift is in % of
the champion's value, and cost per 1% lift is the extra cost per 1K predictions divided by the
relative lift. Versions served to different traffic are compared as they are: for a like-for-like
comparison, score the same traffic with both (shadow) and evaluate that.
"""

from __future__ import annotations

from typing import Any

from modeltel.loop._cost import cost_latency
from modeltel.loop._metrics import Key, classification, regression
from modeltel.loop._result import HIGHER_IS_BETTER, Comparison, GroupReport

__all__ = ["compare_versions", "lift"]


def lift(metric: str, baseline: float, value: float) -> float:
    """Improvement of ``value`` over ``baseline`` on ``metric`` (positive = better)."""
    return value - baseline if metric in HIGHER_IS_BETTER else baseline - value


def _version_values(con: Any, threshold: float, tasks: dict[str, str]) -> dict[Key, Any]:
    keys = ["model", "version"]
    by_task = {
        t: sorted(m for m, task in tasks.items() if task == t) for t in ("classification", "regression")
    }
    found: dict[Key, Any] = dict(classification(con, keys, by_task["classification"], threshold))
    found.update(regression(con, keys, by_task["regression"]))
    return found


def _comparison(
    model: str, metric: str, base: tuple[str, Any], other: tuple[str, Any], costs: dict[Key, Any]
) -> Comparison:
    (base_version, base_metrics), (version, metrics) = base, other
    base_value, value = getattr(base_metrics, metric, None), getattr(metrics, metric, None)
    base_cost, cost = costs.get((model, base_version)), costs.get((model, version))
    gained = lift(metric, base_value, value) if base_value is not None and value is not None else None
    relative = gained / abs(base_value) * 100 if gained is not None and base_value else None
    delta = (
        cost.cost_per_1k - base_cost.cost_per_1k
        if cost is not None
        and base_cost is not None
        and None not in (cost.cost_per_1k, base_cost.cost_per_1k)
        else None
    )
    per_point = delta / relative if delta is not None and relative is not None and relative > 0 else None
    return Comparison(
        model, base_version, version, metric, base_value, value, gained, relative, delta, per_point
    )


def compare_versions(
    con: Any, threshold: float, groups: dict[Key, GroupReport], tasks: dict[str, str]
) -> list[Comparison]:
    """One :class:`Comparison` per non-champion version of every model with two or more versions.

    Groups keyed by (model, version) already hold the figures; per-tenant groups do not, and
    the version totals are computed again.
    """
    values: dict[Key, Any]
    if all(len(key) == 2 for key in groups):
        values = {
            k: g.classification or g.regression for k, g in groups.items() if g.classification or g.regression
        }
        costs: dict[Key, Any] = {k: g.cost for k, g in groups.items() if g.cost is not None}
    else:
        values = _version_values(con, threshold, tasks)
        costs = cost_latency(con, ["model", "version"])
    primary = {g.model: g.primary_metric for g in groups.values() if g.primary_metric}
    result: list[Comparison] = []
    for model, metric in sorted(primary.items()):
        versions = sorted(
            ((k[1], m) for k, m in values.items() if k[0] == model), key=lambda vm: (-vm[1].n, vm[0])
        )
        for other in versions[1:]:
            result.append(_comparison(model, metric, versions[0], other, costs))
    return result
