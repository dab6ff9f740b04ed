"""The authoritative per-value checks and the Violation they produce (the slow, explaining path).

The generated fast path (``_contract_codegen``) only answers "valid or not"; whenever it says
"not", these functions decide what exactly is wrong, so every rule is written down once, here.

Deliberate differences from ``Model.model_validate(payload, strict=True)``:

* numpy scalars (``np.float64``, ``np.int64``, ``np.bool_``, ``np.str_``) count as their Python
  equivalents;
* NaN and +/-inf break a float field unless it allows them (``Field(allow_inf_nan=True)``);
  pydantic allows them by default;
* an Enum field accepts a member or a member's value (features usually arrive as JSON);
* Literal and Enum membership is type-aware for booleans: ``True`` is not the category ``1``;
* ``list[float]`` / ``list[int]`` accept a list, a tuple or a 1-D ndarray.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from modeltel._contract.spec import FieldSpec, category_key
from modeltel._contract.violation import Violation

_INT_TYPES = (int, np.integer)
_FLOAT_TYPES = (float, int, np.floating, np.integer)
_COMPARE = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}


def is_int(value: Any) -> bool:
    """Strict int: ints and numpy integers, never bools."""
    return isinstance(value, _INT_TYPES) and not isinstance(value, bool)


def is_float(value: Any) -> bool:
    """Strict float: floats, and ints (as pydantic strict allows), never bools."""
    return isinstance(value, _FLOAT_TYPES) and not isinstance(value, bool)


def is_finite(value: Any) -> bool:
    """False for NaN and +/-inf; ints (however large) are finite."""
    return not isinstance(value, (float, np.floating)) or math.isfinite(value)


def is_bool(value: Any) -> bool:
    """Strict bool: Python or numpy booleans only."""
    return isinstance(value, (bool, np.bool_))


def rule_text(spec: FieldSpec) -> str:
    """The human-readable rule a category or type violation names."""
    if spec.kind in ("literal", "enum"):
        return f"one of {sorted(spec.categories, key=category_key)!r}"
    return "type " + spec.kind.replace("list_", "list[") + ("]" if spec.kind.startswith("list_") else "")


def check_value(spec: FieldSpec, value: Any, row: int | None = None) -> Violation | None:
    """The one violation (if any) that ``value`` commits against ``spec``."""
    name, got = spec.name, type(value).__name__
    if value is None:
        return None if spec.nullable else Violation(name, "null", "not nullable", got, row)
    kind = spec.kind
    if kind == "float" or kind == "int":
        return _check_number(spec, value, row)
    if kind == "bool":
        ok = is_bool(value)
    elif kind == "str":
        ok = isinstance(value, str)
    elif kind in ("literal", "enum"):
        if not _in_categories(spec, value):
            return Violation(name, "category", rule_text(spec), got, row)
        return None
    else:
        return _check_list(spec, value, row)
    return None if ok else Violation(name, "type", rule_text(spec), got, row)


def _check_number(spec: FieldSpec, value: Any, row: int | None) -> Violation | None:
    name, got = spec.name, type(value).__name__
    if not (is_float(value) if spec.kind == "float" else is_int(value)):
        return Violation(name, "type", rule_text(spec), got, row)
    if spec.kind == "float" and not spec.allow_inf_nan and not is_finite(value):
        return Violation(name, "non_finite", "finite", got, row)
    return range_violation(spec, value, row)


def range_violation(spec: FieldSpec, value: Any, row: int | None = None) -> Violation | None:
    """The first bound ``value`` breaks; NaN breaks every bound, as in pydantic."""
    for bound, limit in spec.bounds():
        if not _COMPARE[bound](value, limit):
            return Violation(spec.name, "range", f"{bound}={limit!r}", type(value).__name__, row)
    return None


def _in_categories(spec: FieldSpec, value: Any) -> bool:
    if spec.enum is not None and isinstance(value, spec.enum):
        return True
    if isinstance(value, np.generic):
        value = value.item()
    try:
        key = category_key(value)
        return any(key == category_key(c) for c in spec.categories)
    except Exception:  # unhashable or oddly-comparing values are simply not a category
        return False


def _check_list(spec: FieldSpec, value: Any, row: int | None) -> Violation | None:
    name, got = spec.name, type(value).__name__
    if isinstance(value, np.ndarray):
        want = "iu" if spec.kind == "list_int" else "fiu"
        ok = value.ndim == 1 and value.dtype.kind in want
        items: Iterable[Any] = value.tolist() if ok else ()
    else:
        ok = isinstance(value, (list, tuple))
        items = value if ok else ()
        ok = ok and all(is_int(x) if spec.kind == "list_int" else is_float(x) for x in items)
    if not ok:
        return Violation(name, "type", rule_text(spec), got, row)
    if spec.kind == "list_float" and not spec.allow_inf_nan and not all(map(is_finite, items)):
        return Violation(name, "non_finite", "finite", got, row)
    return None


def check_mapping(
    specs: tuple[FieldSpec, ...],
    names: frozenset[str],
    forbid: bool,
    features: Mapping[str, Any],
    row: int | None = None,
) -> list[Violation]:
    """Every violation of one row, in field order, then unexpected features in payload order."""
    out: list[Violation] = []
    for spec in specs:
        if spec.name in features:
            violation = check_value(spec, features[spec.name], row)
            if violation is not None:
                out.append(violation)
        elif spec.required:
            out.append(Violation(spec.name, "missing", "required", "missing", row))
    if forbid:
        for key, value in features.items():
            if key not in names:
                out.append(Violation(str(key), "unexpected", "not in contract", type(value).__name__, row))
    return out
