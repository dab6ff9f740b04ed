"""OTLP-JSON AnyValue to Python scalars, with the same rules as the SQL macros in ``_load``.

``text`` mirrors ``mt_str`` (string, else int, else double as JSON text, else bool as
``true``/``false``), ``number`` mirrors ``mt_num`` (double, else int, else bool as 1/0; text that
is not a number is None) and ``nanos`` reads an int64 exactly, where a cast through DOUBLE would
round nanosecond timestamps.

``json_text``, ``json_number`` and ``json_nanos`` do the same for the values of a body that is
JSON text, decoded (``mt_jstr``, ``mt_jnum``, ``mt_jnanos``): null is None, a number or a boolean
is a number, text is text and not a number. (A float in a text column is written by DuckDB in
its own way past 1e16, e.g. ``1e300`` for ``1e+300``: modeltel writes none.)
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["first_values", "json_nanos", "json_number", "json_text", "nanos", "number", "record_time", "text"]


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


def json_text(value: Any) -> str | None:
    """``mt_jstr``: a decoded JSON value as text, None for null, arrays and objects."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return orjson.dumps(value).decode()
    return None


def json_number(value: Any) -> float | None:
    """``mt_jnum``: a decoded JSON number (or boolean, as 1/0) as a float, else None."""
    if isinstance(value, (int, float)):  # bool included: True is 1
        return float(value)
    return None


def json_nanos(value: Any) -> int | None:
    """``mt_jnanos``: a decoded JSON integer exactly (int64), another number rounded, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return value
    found = json_number(value)
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
