"""How a budget is enforced: a reservation ledger per tenant and UTC calendar window.

Money is counted in integer micro-units (``round(cost * 1e6)``) so that spend is an exact sum
whatever order calls settle in (floats are not associative), and so that Redis' Lua (doubles,
exact to 2**53) can hold it: hence budgets of at most 9e9 and a cost resolution of 1e-6.

Protocol: ``admit`` reserves the caller's cost estimate and is denied iff
``spent + reserved + cost > amount``; ``settle`` swaps the reservation for the actual cost;
``release`` drops the reservation (predict raised or was cancelled). Each reservation carries a
lease (default 300 s): a reservation whose process crashed before settling is freed when its
lease expires, so after quiescence ``reserved == 0`` and ``spent`` is the sum of settled costs.

Overspend bound: every admission leaves ``spent + reserved <= amount`` and ``spent`` only grows
by settles, so the final spend exceeds ``amount`` by at most the sum of ``actual - reserved``
over the calls still in flight at the last admission (a call whose lease expired before it
settled counts with ``reserved = 0``). With a fixed cost per call (actual == estimate) the
budget is never overspent; serially, overspend is at most one call's ``actual - estimate``.

A call is charged to the window it was admitted in; a settle that arrives after that window
ended changes nothing (the ended window no longer limits anyone).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass

from modeltel._limits._spec import Budget

MICROS = 1_000_000
_HOUR = 3600
_DAY = 86400
_HUGE = 2**62


@dataclass(frozen=True, slots=True)
class BudgetRule:
    """A ``Budget`` compiled to micro-units."""

    amount: int
    window: str
    spec: str


def compile_budget(budget: Budget, divisor: int = 1) -> BudgetRule:
    """Compile ``budget``; ``divisor`` splits it across replicas for the local fallback."""
    spec = str(budget) if divisor == 1 else f"{budget} shared by {divisor} replicas"
    return BudgetRule(amount=to_units(budget.amount) // divisor, window=budget.window, spec=spec)


def to_units(cost: float) -> int:
    """A cost in micro-units (nearest); NaN and negatives are 0, infinity is more than any budget."""
    if cost > 0:
        units = cost * MICROS
        return round(units) if units < _HUGE else _HUGE
    return 0


def from_units(units: int) -> float:
    """Micro-units back to the caller's currency."""
    return units / MICROS


_month_cache: tuple[int, int] = (0, 0)


def window_bounds(now: float, window: str) -> tuple[int, int]:
    """``(start, end)`` unix seconds of the UTC calendar ``window`` containing ``now``."""
    global _month_cache
    if window == "hour":
        start = int(now // _HOUR) * _HOUR
        return start, start + _HOUR
    if window == "day":
        start = int(now // _DAY) * _DAY
        return start, start + _DAY
    cached = _month_cache
    if cached[0] <= now < cached[1]:
        return cached
    day = dt.datetime.fromtimestamp(int(now // 1), dt.timezone.utc).date()
    first = calendar.timegm((day.year, day.month, 1, 0, 0, 0))
    next_year, next_month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    _month_cache = (first, calendar.timegm((next_year, next_month, 1, 0, 0, 0)))
    return _month_cache


class Ledger:
    """One tenant's spend in its current window (memory backend).

    ``MemoryStore`` reads and updates the fields directly, under its lock, on the hot path.
    """

    __slots__ = ("end", "leases", "reserved", "spent", "start")

    def __init__(self) -> None:
        self.start = -1
        self.end = -1
        self.spent = 0
        self.reserved = 0
        # Only while reservations are held (an empty OrderedDict alone is ~0.4 KB per tenant).
        # OrderedDict, not dict: finding the oldest entry of a dict with many deletions is O(n).
        self.leases: OrderedDict[int, tuple[int, float]] | None = None

    def roll(self, start: int, end: int) -> None:
        """Move to window ``[start, end)``, forgetting the ended one's spend and reservations."""
        if start != self.start:
            self.start, self.end = start, end
            self.spent = self.reserved = 0
            self.leases = None

    def expire(self, now: float) -> int:
        """Free reservations whose lease ran out; return how many."""
        leases = self.leases
        freed = 0
        # Leases are inserted in expiry order (fixed lease length), so the oldest comes first.
        while leases:
            lease = next(iter(leases))
            amount, expiry = leases[lease]
            if expiry > now:
                return freed
            del leases[lease]
            self.reserved -= amount
            freed += 1
        self.leases = None
        return freed

    def idle(self, now: float) -> bool:
        """True when dropping this ledger cannot change any decision."""
        return self.end <= now or (self.spent == 0 and self.reserved == 0 and not self.leases)
