"""OTLP-JSON AnyValue to Python scalars, with the same rules as the SQL macros in ``_load``.

``text`` mirrors ``mt_str`` (string, else int, else double as JSON text, else bool as
``true``/``false``), ``number`` mirrors ``mt_num`` (double, else int, else bool as 1/0; text that
is not a number is None) and ``nanos`` reads an int64 exactly, where a cast through DOUBLE would
round nanosecond timestamps.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["first_values", "nanos", "number", "record_time", "text"]


def text(value: Any) -> str | None:
    """``mt_str``: the AnyValue as text, None when it holds no scalar."""
    if not isinstance(value, dict):
        return None
    for key in ("stringValue", "intValue", "doubleValue"):
        item = value.get(key)
        if item is not None:
            return item if isinstance(item, str) else orjson.dumps(item).decode()
    flag = value.get("boolValue")
    return None if flag is None else ("true" if flag else "false")


def number(value: Any) -> float | None:
    """``mt_num``: the AnyValue as a float, None when it holds no number."""
    if not isinstance(value, dict):
        return None
    for key in ("doubleValue", "intValue"):
        found = _float(value.get(key))
        if found is not None:
            return found
    flag = value.get("boolValue")
    return None if flag is None else (1.0 if flag else 0.0)


def nanos(value: Any) -> int | None:
    """An int64 AnyValue exactly; other numbers rounded (as ``CAST(double AS BIGINT)``)."""
    exact = _int(value.get("intValue")) if isinstance(value, dict) else None
    if exact is not None:
        return exact
    found = number(value)
    return round(found) if found is not None and abs(found) < 2.0**63 else None


def record_time(record: dict[str, Any]) -> int:
    """A log record's time: ``timeUnixNano``, else ``observedTimeUnixNano``, else 0."""
    for key in ("timeUnixNano", "observedTimeUnixNano"):
        found = _int(record.get(key))
        if found is not None:
            return found
    return 0


def first_values(pairs: Any) -> dict[str, Any]:
    """A KeyValue list as a dict; the first of repeated keys wins (as ``list_filter(...)[1]``)."""
    found: dict[str, Any] = {}
    for pair in pairs if isinstance(pairs, list) else ():
        if isinstance(pair, dict) and isinstance(pair.get("key"), str):
            found.setdefault(pair["key"], pair.get("value"))
    return found


def _float(item: Any) -> float | None:
    if item is None or isinstance(item, bool):
        return None
    try:
        return float(item)
    except (TypeError, ValueError):
        return None


def _int(item: Any) -> int | None:
    if item is None or isinstance(item, (bool, float)):
        return None
    try:
        return int(item)
    except (TypeError, ValueError):
        return None
