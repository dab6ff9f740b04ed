"""What the limits are: ``Rate`` and ``Budget`` values and the parsers for their env-var specs.

Grammar (``MODELTEL_RATE_LIMITS`` / ``MODELTEL_BUDGETS``)::

    spec    := entry (";" entry)*
    entry   := tenant "=" limit          # whitespace around every token is ignored
    rate    := COUNT "/" PERIOD [ "burst" BURST ]   # COUNT, BURST positive integers
    budget  := AMOUNT "/" WINDOW                    # AMOUNT a non-negative decimal

``PERIOD`` is one of ``s``, ``min``, ``hour``, ``day`` (long forms ``second``, ``minute`` and
``sec``, ``h``, ``d`` are accepted too); ``WINDOW`` is one of ``hour``, ``day``, ``month``, aligned
to UTC calendar boundaries. ``*`` is the entry for any tenant without its own; each such tenant
gets its own bucket and budget with those parameters.

Empty entries are tolerated (``"acme=5/s;"`` and ``""`` are fine: env vars are often assembled
by templates); a tenant named twice, an empty tenant name or any malformed limit is rejected
with a ``ConfigurationError`` naming the variable and the bad entry.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from modeltel._errors import ConfigurationError

PERIODS: Final[dict[str, float]] = {"s": 1.0, "min": 60.0, "hour": 3600.0, "day": 86400.0}
_PERIOD_ALIASES: Final[dict[str, str]] = {
    "s": "s",
    "sec": "s",
    "second": "s",
    "min": "min",
    "minute": "min",
    "h": "hour",
    "hour": "hour",
    "d": "day",
    "day": "day",
}
WINDOWS: Final = ("hour", "day", "month")
# Budgets are kept in integer micro-units (see _budget.py); Redis' Lua numbers are doubles,
# exact up to 2**53 micro-units, so larger budgets could not be counted exactly.
MAX_BUDGET: Final = 9e9

_RATE = re.compile(r"^(?P<count>[^/\s]+)\s*/\s*(?P<period>[A-Za-z]+)(?:\s+burst\s+(?P<burst>\S+))?$")
_DIGITS = re.compile(r"[0-9]+")
_BUDGET = re.compile(r"^(?P<amount>[^/\s]+)\s*/\s*(?P<window>[A-Za-z]+)$")


@dataclass(frozen=True)
class Rate:
    """At most ``burst`` calls at once, refilled at ``count`` per ``period_s`` seconds."""

    count: int
    period_s: float
    burst: int

    def __str__(self) -> str:
        unit = next((name for name, secs in PERIODS.items() if secs == self.period_s), None)
        period = unit if unit is not None else f"{self.period_s:g}s"
        tail = "" if self.burst == self.count else f" burst {self.burst}"
        return f"{self.count}/{period}{tail}"


@dataclass(frozen=True)
class Budget:
    """A spend cap of ``amount`` per UTC-calendar ``window`` (``hour``, ``day`` or ``month``)."""

    amount: float
    window: str

    def __str__(self) -> str:
        amount = int(self.amount) if float(self.amount).is_integer() else self.amount
        return f"{amount}/{self.window}"


def parse_rate(text: str, variable: str = "MODELTEL_RATE_LIMITS", tenant: str = "") -> Rate:
    """Parse one rate such as ``"100/s"`` or ``"100/s burst 200"``; raise ``ConfigurationError``."""
    where = _where(variable, tenant, text)
    match = _RATE.match(text.strip())
    if match is None:
        raise ConfigurationError(f"{where}: expected COUNT/PERIOD [burst N], e.g. '100/s burst 200'")
    count = _positive_int(match["count"], "count", where)
    period = _PERIOD_ALIASES.get(match["period"].lower())
    if period is None:
        raise ConfigurationError(f"{where}: unknown period {match['period']!r} (use s, min, hour or day)")
    burst = count if match["burst"] is None else _positive_int(match["burst"], "burst", where)
    return Rate(count=count, period_s=PERIODS[period], burst=burst)


def parse_budget(text: str, variable: str = "MODELTEL_BUDGETS", tenant: str = "") -> Budget:
    """Parse one budget such as ``"50/day"``; raise ``ConfigurationError`` naming the bad part."""
    where = _where(variable, tenant, text)
    match = _BUDGET.match(text.strip())
    if match is None:
        raise ConfigurationError(f"{where}: expected AMOUNT/WINDOW, e.g. '50/day'")
    try:
        amount = float(match["amount"])
    except ValueError:
        raise ConfigurationError(f"{where}: amount {match['amount']!r} is not a number") from None
    if not math.isfinite(amount) or amount < 0 or amount > MAX_BUDGET:
        raise ConfigurationError(f"{where}: amount {match['amount']!r} must be between 0 and {MAX_BUDGET:g}")
    window = match["window"].lower()
    if window not in WINDOWS:
        raise ConfigurationError(f"{where}: unknown window {match['window']!r} (use hour, day or month)")
    return Budget(amount=amount, window=window)


def parse_rate_limits(spec: str, variable: str = "MODELTEL_RATE_LIMITS") -> dict[str, Rate]:
    """Parse ``"acme=100/s;beta=10/s;*=20/s"`` into ``{tenant: Rate}``."""
    return {tenant: parse_rate(text, variable, tenant) for tenant, text in _entries(spec, variable)}


def parse_budgets(spec: str, variable: str = "MODELTEL_BUDGETS") -> dict[str, Budget]:
    """Parse ``"acme=50/day;*=5/hour"`` into ``{tenant: Budget}``."""
    return {tenant: parse_budget(text, variable, tenant) for tenant, text in _entries(spec, variable)}


def normalize_rate_limits(
    value: str | Mapping[str, str | Rate] | None, variable: str = "rate_limits"
) -> dict[str, Rate]:
    """Accept a spec string, a ``{tenant: "100/s" | Rate}`` mapping or ``None`` (no limits)."""
    if value is None:
        return {}
    if isinstance(value, str):
        return parse_rate_limits(value, variable)
    out: dict[str, Rate] = {}
    for tenant, rate in _checked_items(value, variable):
        out[tenant] = (
            rate if isinstance(rate, Rate) else parse_rate(_text(rate, variable, tenant), variable, tenant)
        )
    return out


def normalize_budgets(
    value: str | Mapping[str, str | Budget] | None, variable: str = "budgets"
) -> dict[str, Budget]:
    """Accept a spec string, a ``{tenant: "50/day" | Budget}`` mapping or ``None`` (no budgets)."""
    if value is None:
        return {}
    if isinstance(value, str):
        return parse_budgets(value, variable)
    out: dict[str, Budget] = {}
    for tenant, budget in _checked_items(value, variable):
        out[tenant] = (
            budget
            if isinstance(budget, Budget)
            else parse_budget(_text(budget, variable, tenant), variable, tenant)
        )
    return out


def _entries(spec: str, variable: str) -> list[tuple[str, str]]:
    entries: list[tuple[str, str]] = []
    seen: set[str] = set()
    for raw in spec.split(";"):
        part = raw.strip()
        if not part:
            continue
        tenant, sep, text = part.partition("=")
        tenant = tenant.strip()
        if not sep:
            raise ConfigurationError(f"{variable}: bad entry {part!r}: expected TENANT=LIMIT")
        if not tenant:
            raise ConfigurationError(f"{variable}: bad entry {part!r}: empty tenant name")
        if tenant in seen:
            raise ConfigurationError(f"{variable}: bad entry {part!r}: tenant {tenant!r} is listed twice")
        seen.add(tenant)
        entries.append((tenant, text.strip()))
    return entries


def _checked_items(value: Mapping[str, object], variable: str) -> list[tuple[str, object]]:
    items = list(value.items())
    for tenant, _ in items:
        if not isinstance(tenant, str) or not tenant.strip():
            raise ConfigurationError(f"{variable}: bad tenant name {tenant!r}")
    return items


def _text(value: object, variable: str, tenant: str) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{variable}: bad entry for {tenant!r}: expected a string, got {value!r}")
    return value


def _positive_int(text: str, what: str, where: str) -> int:
    if _DIGITS.fullmatch(text) is None or int(text) < 1:
        raise ConfigurationError(f"{where}: {what} {text!r} must be a positive integer")
    return int(text)


def _where(variable: str, tenant: str, text: str) -> str:
    entry = f"{tenant}={text.strip()}" if tenant else text.strip()
    return f"{variable}: bad entry {entry!r}"
