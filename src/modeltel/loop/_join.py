"""Joining outcomes to predictions, and the maturation rule that decides what may be scored.

Rules (the README's "maturation and duplicates" section states them for users):

* An outcome names its prediction by ``prediction_id`` (ids are unique across models, so its
  ``model`` is not consulted); one with only a ``payload_hash`` labels every prediction of that
  payload (of its ``model`` when it names one).
* ``as_of`` is an instant, and what happened before it counts: outcomes known before it
  (``at < as_of``; outcomes without ``at`` always count) and predictions made before it.
* Several outcomes for one prediction: the one with the latest ``at`` wins (ties: the one
  loaded last), so a corrected label replaces the first one. Outcomes without ``at`` rank
  before any timestamped one.
* A prediction is *matured* once ``ts + maturation <= as_of``; only matured predictions are
  evaluated, labelled or not, so fast-arriving labels do not bias young windows.
  Label coverage = matured predictions with a label / matured predictions.
* Predictions made at or after ``as_of`` are ignored entirely.
"""

from __future__ import annotations

from typing import Any, Final

from modeltel.loop._dialect import dialect

__all__ = ["SAMPLE_KEY", "build_joined", "latest_timestamp"]

# What a sample of predictions is drawn by, in table {t}: the same on every engine.
SAMPLE_KEY: Final = "coalesce({t}.prediction_id, CAST({t}.ts AS STRING))"

_NO_AT = -(2**63) + 1


def latest_timestamp(con: Any) -> int | None:
    """The latest prediction or outcome time in the loaded data (Unix ns), or None when empty.
    (The default ``as_of`` is 1 ns after it, so that instant is in the current window.)"""
    row = con.execute(
        "SELECT greatest((SELECT max(ts) FROM predictions), (SELECT max(at_ns) FROM outcomes))"
    ).fetchone()
    return None if row[0] is None else int(row[0])


def build_joined(con: Any, *, as_of: int, maturation: int, period: int, origin: int = 0) -> None:
    """Create table ``joined``: every prediction before ``as_of`` with its winning label, if any.

    Keeps the prediction columns the evaluation reads (:data:`_KEPT`) and adds ``matured``
    (bool), ``period`` (``(ts - origin) // period``: periods counted from ``origin``),
    ``label_num`` / ``label_str`` (NULL when unlabelled) and ``sample_unit``, the number in
    [0, 1) by which drift samples choose the prediction (:meth:`Dialect.unit_hash` of its id,
    else of its ``ts``): an MD5 per row, computed here once rather than in each drift pass.
    Outcomes are reduced to one per key before the join, so the large side (predictions) is
    only probed, never grouped. The three candidate labels (by id, by hash and model, by hash
    alone) come from disjoint outcomes, so their ranks never tie. A candidate no outcome
    provides is not joined at all: each join moves every prediction once more (a shuffle of all
    of them on Spark).
    """
    sql = dialect(con)
    rank = sql.pair(f"coalesce(at_ns, {_NO_AT})", "seq")
    reduced = f"max({rank}) AS r, max_by(label_num, {rank}) AS n, max_by(label_str, {rank}) AS s"
    period_of = sql.div(f"p.ts - {origin}", period)
    present = _candidates(con, as_of)
    joins = "\n".join(_JOINS[alias] for alias in present)
    con.execute(f"""
        CREATE OR REPLACE TABLE joined AS
        WITH known AS (
            SELECT * FROM outcomes WHERE at_ns IS NULL OR at_ns < {as_of}
        ), by_id AS (
            SELECT prediction_id, {reduced}
            FROM known WHERE prediction_id IS NOT NULL GROUP BY prediction_id
        ), by_hash AS (
            SELECT payload_hash, model, {reduced}
            FROM known WHERE prediction_id IS NULL AND payload_hash IS NOT NULL GROUP BY payload_hash, model
        )
        SELECT {_KEPT}, p.ts + {maturation} <= {as_of} AS matured, {period_of} AS period,
               {_pick(present, "n")} AS label_num, {_pick(present, "s")} AS label_str,
               {sql.unit_hash(SAMPLE_KEY.format(t="p"))} AS sample_unit
        FROM predictions p
        {joins}
        WHERE p.ts < {as_of}
    """)


# The prediction columns a later stage reads. Not payload_hash or decision: every stage scans
# ``joined`` (on Spark, from its cache), and those two were a fifth of its bytes.
_KEPT: Final = ", ".join(
    f"p.{c}"
    for c in ("model", "version", "tenant", "prediction_id", "score", "outcome", "ts", "duration_s", "cost")
)

# The candidate labels, in the order that wins a tie: by id, by hash and model, by hash alone.
_JOINS: Final = {
    "i": "LEFT JOIN by_id i ON i.prediction_id = p.prediction_id",
    "hm": "LEFT JOIN by_hash hm ON hm.payload_hash = p.payload_hash AND hm.model = p.model",
    "ha": "LEFT JOIN by_hash ha ON ha.payload_hash = p.payload_hash AND ha.model IS NULL",
}


def _candidates(con: Any, as_of: int) -> list[str]:
    """The aliases of :data:`_JOINS` that some outcome known before ``as_of`` provides."""
    by_hash = "prediction_id IS NULL AND payload_hash IS NOT NULL"
    row = con.execute(f"""
        SELECT count(*) FILTER (WHERE prediction_id IS NOT NULL),
               count(*) FILTER (WHERE {by_hash} AND model IS NOT NULL),
               count(*) FILTER (WHERE {by_hash} AND model IS NULL)
        FROM outcomes WHERE at_ns IS NULL OR at_ns < {as_of}
    """).fetchone()
    return [alias for alias, n in zip(_JOINS, row or (0, 0, 0), strict=True) if n]


def _pick(present: list[str], column: str) -> str:
    """The candidate label with the highest rank (the earlier candidate on a tie)."""
    if not present:
        return f"CAST(NULL AS {_TYPES[column]})"
    *contenders, last = present
    cases = " ".join(
        f"WHEN {_outranks(alias, present[i + 1 :])} THEN {alias}.{column}"
        for i, alias in enumerate(contenders)
    )
    return f"CASE {cases} ELSE {last}.{column} END" if cases else f"{last}.{column}"


def _outranks(alias: str, later: list[str]) -> str:
    """True when candidate ``alias`` ranks at least as high as every ``later`` one it meets."""
    return " AND ".join(f"{alias}.r >= coalesce({other}.r, {alias}.r)" for other in later)


_TYPES: Final = {"n": "DOUBLE", "s": "STRING"}
