"""Where DuckDB's SQL and Spark's differ, for the loop's one set of queries.

The join and every aggregate are written once, in the SQL both engines read (``GROUP BY ALL``,
``count(*) FILTER (WHERE ...)``, ``max_by``, ``array_agg``, ``power``, window frames). The few
spellings that differ are this table's entries, and a query asks its connection's dialect for
them. A connection without a ``dialect`` attribute (a DuckDB connection) is DuckDB.

Exact quantiles are the one entry that is a whole query rather than a spelling: DuckDB has an
exact ``quantile_cont`` aggregate, while Spark's exact ``percentile`` keeps every distinct value
of a group in one hash map (50M latencies of one model version are more than a 6 GB heap).
Spark's query instead counts each group's values in buckets ordered like the values, keeps the
few buckets holding the two values each quantile falls between, numbers the values of only
those buckets in order, and interpolates. Sorting every value instead took five times as long
at 10M predictions. The few buckets are broadcast to the join with the values: planned as a
shuffle of every value, it took 40% longer at 10M.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["DUCKDB", "SPARK", "Dialect", "dialect", "finite"]

# 2**52: a 13-hex-digit prefix of an MD5 is an integer below it, exact in a double.
_UNIT: Final = 4503599627370496.0


@dataclass(frozen=True)
class Dialect:
    """One engine's spelling of each construct, as format strings."""

    name: str
    int_div: str  # {a}, {b}: integer division, rounding toward zero
    quantiles: Callable[[Sequence[str], str, str, Sequence[float]], str]  # see grouped_quantiles
    unnest: str  # {x}: one row per element of a list column
    rank: str  # {a}, {b}: an orderable pair
    hex_int: str  # {x}: a hexadecimal string as a BIGINT

    def div(self, a: str, b: str | int) -> str:
        """``a`` divided by ``b``, both integers, as an integer."""
        return self.int_div.format(a=a, b=b)

    def grouped_quantiles(self, keys: Sequence[str], x: str, rows: str, qs: Sequence[float]) -> str:
        """A query giving, per group of ``keys`` over ``rows`` (a table name and its WHERE
        clause), the ``keys`` and a list of the ``qs`` quantiles of ``x``, linearly interpolated
        as ``numpy.percentile`` does. Groups with no rows are absent."""
        return self.quantiles(keys, x, rows, qs)

    def explode(self, x: str) -> str:
        """One row per element of list column ``x``."""
        return self.unnest.format(x=x)

    def pair(self, a: str, b: str) -> str:
        """``(a, b)``, ordered by ``a`` then ``b``."""
        return self.rank.format(a=a, b=b)

    def unit_hash(self, x: str) -> str:
        """A number in [0, 1) from the MD5 of text ``x``: the same on every engine, so a sample
        chosen by it is the same rows whichever engine runs the query."""
        digits = self.hex_int.format(x=f"substr(md5({x}), 1, 13)")
        # A DOUBLE, exact: Spark divides a BIGINT by a decimal literal as decimals, rounded to 17 places.
        return f"(CAST({digits} AS DOUBLE) / {_UNIT!r})"


def _duckdb_quantiles(keys: Sequence[str], x: str, rows: str, qs: Sequence[float]) -> str:
    listed = ", ".join(repr(q) for q in qs)
    return f"SELECT {', '.join(keys)}, quantile_cont({x}, [{listed}]) FROM {rows} GROUP BY ALL"


def _spark_quantiles(keys: Sequence[str], x: str, rows: str, qs: Sequence[float]) -> str:
    k = ", ".join(keys)
    b_keys = ", ".join(f"b.{key}" for key in keys)
    same_group = " AND ".join(f"b.{key} = w.{key}" for key in keys)
    # Buckets in the order of x (x is finite here): one per 1/64 of a natural log of a positive
    # x, one for every x <= 0, below all others (ln of the least double is above -48,000).
    bucket = f"CASE WHEN {x} > 0 THEN floor(ln({x}) * 64) ELSE -100000 END"

    def positions(q: float) -> tuple[str, str]:
        return f"floor({q!r} * last)", f"ceil({q!r} * last)"

    def value_at(index: str) -> str:
        return f"max(v) FILTER (WHERE i = {index})"

    def interpolated(q: float) -> str:
        lower, upper = positions(q)
        below, above = value_at(lower), value_at(upper)
        return f"{below} + (max({q!r} * last) - max({lower})) * ({above} - {below})"

    wanted = [p for q in qs for p in positions(q)]
    return f"""
        WITH b AS (SELECT {k}, {x} AS v, {bucket} AS bucket FROM {rows}),
        counted AS (
            SELECT {k}, bucket, count(*) AS n,
                   sum(count(*)) OVER (PARTITION BY {k} ORDER BY bucket) - count(*) AS before,
                   sum(count(*)) OVER (PARTITION BY {k}) - 1 AS last
            FROM b GROUP BY ALL
        ), w AS (
            SELECT * FROM counted
            WHERE {" OR ".join(f"({p} >= before AND {p} < before + n)" for p in wanted)}
        ), numbered AS (
            SELECT /*+ BROADCAST(w) */ {b_keys}, b.v, w.last,
                   w.before + row_number() OVER (PARTITION BY {b_keys}, b.bucket ORDER BY b.v) - 1 AS i
            FROM b JOIN w ON {same_group} AND b.bucket = w.bucket
        )
        SELECT {k}, array({", ".join(interpolated(q) for q in qs)})
        FROM numbered WHERE i IN ({", ".join(wanted)}) GROUP BY ALL
    """


DUCKDB: Final = Dialect(
    name="duckdb",
    int_div="({a}) // ({b})",
    quantiles=_duckdb_quantiles,
    unnest="unnest({x})",
    # (a, b) as one HUGEINT, a * 2**64 + b (b, a load sequence, is never negative): compared
    # several times faster than a struct.
    rank="(CAST({a} AS HUGEINT) * 18446744073709551616 + {b})",
    hex_int="CAST('0x' || {x} AS BIGINT)",
)

SPARK: Final = Dialect(
    name="spark",
    int_div="({a}) div ({b})",
    quantiles=_spark_quantiles,
    unnest="explode({x})",
    rank="struct({a}, {b})",
    hex_int="CAST(conv({x}, 16, 10) AS BIGINT)",
)


def dialect(con: Any) -> Dialect:
    """The dialect of connection ``con``."""
    found = getattr(con, "dialect", None)
    return found if isinstance(found, Dialect) else DUCKDB


def finite(x: str) -> str:
    """True when ``x`` is a finite number, false for NaN and infinities, NULL for NULL. (Both
    engines order NaN above every number, infinity included.)"""
    return f"(abs({x}) < CAST('Infinity' AS DOUBLE))"
