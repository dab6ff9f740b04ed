"""Where DuckDB's SQL and Spark's differ, for the loop's one set of queries.

The join and every aggregate are written once, in the SQL both engines read (``GROUP BY ALL``,
``count(*) FILTER (WHERE ...)``, ``max_by``, ``array_agg``, ``power``, window frames). The few
spellings that differ are this table's entries, and a query asks its connection's dialect for
them. A connection without a ``dialect`` attribute (a DuckDB connection) is DuckDB.
"""

from __future__ import annotations

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
    quantiles: str  # {x}, {qs}: linearly interpolated quantiles, as a list
    unnest: str  # {x}: one row per element of a list column
    rank: str  # {a}, {b}: an orderable pair
    hex_int: str  # {x}: a hexadecimal string as a BIGINT

    def div(self, a: str, b: str | int) -> str:
        """``a`` divided by ``b``, both integers, as an integer."""
        return self.int_div.format(a=a, b=b)

    def quantile_list(self, x: str, qs: tuple[float, ...]) -> str:
        """The ``qs`` quantiles of ``x`` (as ``numpy.percentile``)."""
        return self.quantiles.format(x=x, qs=", ".join(repr(q) for q in qs))

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


DUCKDB: Final = Dialect(
    name="duckdb",
    int_div="({a}) // ({b})",
    quantiles="quantile_cont({x}, [{qs}])",
    unnest="unnest({x})",
    # (a, b) as one HUGEINT, a * 2**64 + b (b, a load sequence, is never negative): compared
    # several times faster than a struct.
    rank="(CAST({a} AS HUGEINT) * 18446744073709551616 + {b})",
    hex_int="CAST('0x' || {x} AS BIGINT)",
)

SPARK: Final = Dialect(
    name="spark",
    int_div="({a}) div ({b})",
    quantiles="percentile({x}, array({qs}))",
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
