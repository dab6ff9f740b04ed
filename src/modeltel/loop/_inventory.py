"""The inventory: every model/version seen, its declared truth table, and what is unanswered.

The truth table is what ``instrument(..., owner=, purpose=, metric=, label_source=,
label_delay=, latency_budget_ms=, cost_per_1k_target=)`` declared; it travels as
``ml.model.<key>`` attributes on the prediction records. Each key left undeclared is *missing*;
each declared target the telemetry shows was not met (p95 latency over budget, cost per 1K over
target) is *missed*.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modeltel.loop._cost import CostLatency, cost_latency
from modeltel.loop._engine import connect
from modeltel.loop._load import TRUTH_KEYS, load_telemetry
from modeltel.loop._remote import local_folder
from modeltel.loop._result import InventoryEntry

__all__ = ["build_inventory", "inventory", "inventory_and_skipped", "missed_targets"]


def missed_targets(cost: CostLatency | None) -> tuple[str, ...]:
    """Human-readable descriptions of the targets ``cost`` shows were missed."""
    if cost is None:
        return ()
    missed: list[str] = []
    if cost.latency_missed:
        missed.append(f"latency p95 {cost.p95_ms:.1f} ms > budget {cost.latency_budget_ms:g} ms")
    if cost.cost_missed:
        missed.append(f"cost/1K {cost.cost_per_1k:.4g} > target {cost.cost_per_1k_target:g}")
    return tuple(missed)


def build_inventory(
    con: Any, costs: dict[tuple[str, str], CostLatency] | None = None
) -> list[InventoryEntry]:
    """One :class:`InventoryEntry` per model/version in the loaded telemetry (``costs`` if known)."""
    columns = ", ".join(f"i.{key}" for key in TRUTH_KEYS)
    rows = con.execute(f"""
        WITH p AS (
            SELECT model, version, count(ts) AS n, min(ts) AS t0, max(ts) AS t1
            FROM predictions GROUP BY model, version
        )
        SELECT DISTINCT i.model, i.version, {columns}, coalesce(p.n, 0), p.t0, p.t1
        FROM model_info i LEFT JOIN p ON p.model = i.model AND p.version = i.version
        ORDER BY i.model, i.version
    """).fetchall()
    if costs is None:
        costs = {
            (k[0], k[1]): c for k, c in cost_latency(con, ["model", "version"], table="predictions").items()
        }
    entries: list[InventoryEntry] = []
    for row in rows:
        model, version = row[0], row[1]
        truth = dict(zip(TRUTH_KEYS, row[2 : 2 + len(TRUTH_KEYS)], strict=True))
        count, first, last = row[2 + len(TRUTH_KEYS) :]
        cost = costs.get((model, version))
        missing = tuple(key for key, value in truth.items() if value in (None, ""))
        entries.append(
            InventoryEntry(
                model, version, truth, int(count), first, last, cost, missing, missed_targets(cost)
            )
        )
    return entries


def inventory(path: str | Path) -> list[InventoryEntry]:
    """Load the telemetry in folder ``path`` and return its inventory."""
    return inventory_and_skipped(path)[0]


def inventory_and_skipped(path: str | Path) -> tuple[list[InventoryEntry], dict[str, int]]:
    """:func:`inventory`, and the lines skipped as not JSON per logs file (see ``load_telemetry``)."""
    con = connect()
    try:
        with local_folder(path) as folder:
            skipped = load_telemetry(con, folder)
        return build_inventory(con), skipped
    finally:
        con.close()
