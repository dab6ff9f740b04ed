"""Parsing the loop's time arguments: durations such as ``7d`` and instants such as ISO dates."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

__all__ = ["NS_PER_S", "format_instant", "parse_duration", "parse_instant"]

NS_PER_S = 1_000_000_000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str) -> int:
    """``'7d'``, ``'12h'``, ``'30m'``, ``'90s'`` or ``'2w'`` as nanoseconds; ``ValueError`` otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"expected a duration like 7d, 12h, 30m, 90s or 2w, got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)] * NS_PER_S)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def parse_instant(text: str) -> int:
    """An ISO 8601 date or time (naive means UTC), or ``now``, as Unix nanoseconds."""
    if text.strip().lower() == "now":
        moment = datetime.now(timezone.utc)
    else:
        try:
            moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"expected an ISO 8601 time like 2024-05-01T00:00, got {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    # Exact to the microsecond: a float timestamp is ~0.25 us coarse at today's dates.
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def format_instant(ns: int) -> str:
    """Unix nanoseconds as an ISO 8601 UTC time to the second."""
    return datetime.fromtimestamp(ns / NS_PER_S, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
