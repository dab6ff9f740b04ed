"""Where DuckDB's SQL and Spark's differ, for the loop's one set of queries.

The join and every aggregate are written once, in the SQL both engines read (``GROUP BY ALL``,
``count(*) FILTER (WHERE ...)``, ``max_by``, ``array_agg``, ``power``, window frames). The few
spellings that differ are this table's entries, and a query asks its connection's dialect for
them. A connection without a ``dialect`` attribute (a DuckDB connection) is DuckDB.

Exact quantiles are the one entry that is a whole query rather than a spelling: DuckDB has an
exact ``quantile_cont`` aggregate, while Spark's exact ``percentile`` keeps every distinct value
of a group in one hash map (50M latencies of one model version are more than a 6 GB heap).
Spark's query instead numbers each group's values in order, a sort that spills to disk, and
interpolates between the two values each quantile falls between.
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
        return f"({digits} / {_UNIT!r})"


def _duckdb_quantiles(keys: Sequence[str], x: str, rows: str, qs: Sequence[float]) -> str:
    listed = ", ".join(repr(q) for q in qs)
    return f"SELECT {', '.join(keys)}, quantile_cont({x}, [{listed}]) FROM {rows} GROUP BY ALL"


def _spark_quantiles(keys: Sequence[str], x: str, rows: str, qs: Sequence[float]) -> str:
    k = ", ".join(keys)

    def value_at(index: str) -> str:
        return f"max(v) FILTER (WHERE i = {index})"

    def interpolated(q: float) -> str:
        position = f"({q!r} * last)"  # constant in a group, so max() of it is itself
        below, above = value_at(f"floor{position}"), value_at(f"ceil{position}")
        return f"{below} + (max({position}) - max(floor{position})) * ({above} - {below})"

    wanted = " OR ".join(f"i IN (floor({q!r} * last), ceil({q!r} * last))" for q in qs)
    return f"""
        WITH numbered AS (
            SELECT {k}, {x} AS v, row_number() OVER (PARTITION BY {k} ORDER BY {x}) - 1 AS i,
                   count(*) OVER (PARTITION BY {k}) - 1 AS last
            FROM {rows}
        )
        SELECT {k}, array({", ".join(interpolated(q) for q in qs)})
        FROM numbered WHERE {wanted} GROUP BY ALL
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
