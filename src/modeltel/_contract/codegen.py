"""Generate a contract's fast path once, at decoration time: straight-line Python, ``exec``-ed once.

The fast path only answers "certainly valid?" for the common case (plain Python values, no
violations) with the fewest operations: one dict lookup, an exact ``type() is`` test and one
chained comparison per feature. Saying "no" is always safe: the caller then runs the explaining
checks in ``_contract_rules``, which also accept what the fast path skips (numpy scalars, subclasses).
Generated code runs about 2x faster than a loop over per-field closures on a 20-field dict
(measured: 0.87 vs 1.95 us), and comparing floats with float constants (not ints) saves another third.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from modeltel._contract.rules import is_finite, is_float, is_int
from modeltel._contract.spec import FieldSpec

RowCheck = Callable[[Mapping[str, Any]], bool]
ValueCheck = Callable[[Any], bool]

_MISSING = object()
_TYPE_NAMES = {str: "str", int: "int", float: "float", bool: "bool"}


def _literal(value: Any, consts: dict[str, Any]) -> str:
    """Source text for a constant: inline when repr round-trips, else a namespace name."""
    if type(value) in (int, str, bool) or (type(value) is float and math.isfinite(value)):
        return repr(value)
    name = f"_k{len(consts)}"
    consts[name] = value
    return name


def _bound(spec: FieldSpec, value: float, consts: dict[str, Any]) -> str:
    # float against float compares about 2x faster than float against int: use an equal float
    if spec.kind == "float" and type(value) is int and float(value) == value:
        value = float(value)
    return _literal(value, consts)


def _range_expr(spec: FieldSpec, consts: dict[str, Any]) -> str:
    """One chained comparison holding the bounds (and finiteness, which NaN and inf fail)."""
    finite = spec.kind == "float" and not spec.allow_inf_nan
    if spec.ge is not None:
        low = f"{_bound(spec, spec.ge, consts)} <= "
    elif spec.gt is not None:
        low = f"{_bound(spec, spec.gt, consts)} < "
    else:
        low = "-_inf < " if finite else ""
    if spec.le is not None:
        high = f" <= {_bound(spec, spec.le, consts)}"
    elif spec.lt is not None:
        high = f" < {_bound(spec, spec.lt, consts)}"
    else:
        high = " < _inf" if finite else ""
    return f"{low}v{high}" if low or high else ""


def _categories_expr(spec: FieldSpec, consts: dict[str, Any]) -> str:
    kinds = {type(c) for c in spec.categories}
    # a single exact type keeps True out of int categories, as the explaining check does
    if len(kinds) == 1 and (kind := next(iter(kinds))) in _TYPE_NAMES:
        values = _literal(frozenset(spec.categories), consts)
        test = f"(type(v) is {_TYPE_NAMES[kind]} and v in {values})"
    else:
        test = "False"
    if spec.enum is not None:
        test = f"(type(v) is {_literal(spec.enum, consts)} or {test})"
    return test


def value_expr(spec: FieldSpec, consts: dict[str, Any]) -> str:
    """A boolean expression over ``v`` that is True only when ``v`` is certainly valid for ``spec``."""
    kind = spec.kind
    if kind == "float":
        expr = "(type(v) is float or type(v) is int)"
    elif kind in ("int", "bool", "str"):
        expr = f"type(v) is {kind}"
    elif kind in ("literal", "enum"):
        expr = _categories_expr(spec, consts)
    else:
        expr = f"{_literal(_list_ok(spec), consts)}(v)"
    if kind in ("float", "int") and (ranges := _range_expr(spec, consts)):
        expr = f"{expr} and {ranges}"
    return f"(v is None or ({expr}))" if spec.nullable else f"({expr})"


def _list_ok(spec: FieldSpec) -> ValueCheck:
    item_ok = is_int if spec.kind == "list_int" else is_float
    finite = spec.kind == "list_float" and not spec.allow_inf_nan

    def ok(v: Any) -> bool:
        return type(v) is list and all(item_ok(x) and (not finite or is_finite(x)) for x in v)

    return ok


def _namespace(consts: dict[str, Any]) -> dict[str, Any]:
    return {"_inf": math.inf, "_MISSING": _MISSING, **consts}


def build_row_check(specs: tuple[FieldSpec, ...], forbid: bool) -> RowCheck:
    """Compile a function ``fast(features) -> bool``; it may raise, which also means "not certain"."""
    consts: dict[str, Any] = {}
    required = sum(s.required for s in specs)
    optional = len(specs) - required
    lines = ["def fast(d):"]
    if forbid and not optional:
        lines.append(f"    if len(d) != {required}: return False")
    elif forbid:
        lines.append("    n = 0")
    for spec in specs:
        test = value_expr(spec, consts)
        if spec.required:
            lines += [f"    v = d[{spec.name!r}]", f"    if not {test}: return False"]
        else:
            lines += [f"    v = d.get({spec.name!r}, _MISSING)", "    if v is not _MISSING:"]
            lines += ["        n += 1"] if forbid else []
            lines.append(f"        if not {test}: return False")
    if forbid and optional:
        lines.append(f"    if len(d) != {required} + n: return False")
    lines.append("    return True")
    return _compile("\n".join(lines), consts, "fast")


def build_value_check(spec: FieldSpec) -> ValueCheck:
    """Compile ``ok(value) -> bool`` for one field, never raising (used on object batch columns)."""
    consts: dict[str, Any] = {}
    test = value_expr(spec, consts)
    source = f"def ok(v):\n    try:\n        return {test}\n    except Exception:\n        return False"
    return _compile(source, consts, "ok")


def _compile(source: str, consts: dict[str, Any], name: str) -> Callable[[Any], bool]:
    namespace = _namespace(consts)
    exec(compile(source, f"<modeltel contract {name}>", "exec"), namespace)
    function: Callable[[Any], bool] = namespace[name]
    return function
