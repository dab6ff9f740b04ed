"""Read a pydantic model into plain per-field specs (decoration time), and hash them into a version."""

from __future__ import annotations

import hashlib
import json
import math
import types
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from modeltel._errors import ConfigurationError

Kind = Literal["float", "int", "bool", "str", "literal", "enum", "list_float", "list_int"]
Bound = int | float

_SCALARS: dict[Any, Kind] = {float: "float", int: "int", bool: "bool", str: "str"}
_LISTS: dict[Any, Kind] = {float: "list_float", int: "list_int"}
_NUMERIC: frozenset[str] = frozenset({"float", "int"})
_BOUND_NAMES = ("ge", "gt", "le", "lt")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """Everything the checks need to know about one feature, read once from the pydantic model."""

    name: str
    kind: Kind
    nullable: bool = False
    required: bool = True
    ge: Bound | None = None
    gt: Bound | None = None
    le: Bound | None = None
    lt: Bound | None = None
    categories: tuple[Any, ...] = ()  # Literal values, or the values of an Enum's members
    enum: type[Enum] | None = None
    allow_inf_nan: bool = False
    sensitive: bool = False
    default: Any = None

    @property
    def bounded(self) -> bool:
        """True when any of ge/gt/le/lt is set."""
        return any(getattr(self, b) is not None for b in _BOUND_NAMES)

    def bounds(self) -> list[tuple[str, Bound]]:
        """The set bounds as (name, value) pairs, lower bounds first."""
        return [(b, getattr(self, b)) for b in _BOUND_NAMES if getattr(self, b) is not None]


def parse_model(model: type[BaseModel]) -> tuple[tuple[FieldSpec, ...], bool]:
    """Read every field of ``model`` into a FieldSpec; also whether extra features are forbidden."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigurationError(f"a contract must be a pydantic BaseModel subclass, got {model!r}")
    specs = tuple(_parse_field(name, info) for name, info in model.model_fields.items())
    # pydantic's own default is "ignore"; a contract reports unknown features unless told otherwise
    forbid = model.model_config.get("extra") in (None, "forbid")
    return specs, forbid


def feature_name(name: str, info: FieldInfo) -> str:
    """The feature a field checks: its alias where it has one (a column name that is no Python
    identifier, ``Field(alias="mean radius")``), else its name."""
    alias = info.validation_alias if info.validation_alias is not None else info.alias
    if alias is None:
        return name
    if not isinstance(alias, str):
        raise ConfigurationError(
            f"contract field {name!r}: a validation alias must be one feature name (a str)"
        )
    return alias


def _parse_field(name: str, info: FieldInfo) -> FieldSpec:
    feature = feature_name(name, info)
    annotation, nullable, metadata = _unwrap(name, info.annotation, list(info.metadata))
    kind, categories, enum = _classify(name, annotation)
    values = _read_metadata(name, kind, metadata)
    extra = info.json_schema_extra
    sensitive = isinstance(extra, dict) and extra.get("sensitive") is True
    required = info.is_required()
    default = None if required or info.default_factory is not None else info.default
    return FieldSpec(
        feature,
        kind,
        nullable,
        required,
        categories=categories,
        enum=enum,
        sensitive=sensitive,
        default=default,
        **values,
    )


def _unwrap(name: str, annotation: Any, metadata: list[Any]) -> tuple[Any, bool, list[Any]]:
    """Strip Optional / Annotated layers, collecting nullability and constraint metadata."""
    nullable = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = get_args(annotation)
            for item in extra:
                metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                raise ConfigurationError(f"contract field {name!r}: unsupported union {annotation!r}")
            nullable, annotation = True, args[0]
        else:
            return annotation, nullable, metadata


def _classify(name: str, annotation: Any) -> tuple[Kind, tuple[Any, ...], type[Enum] | None]:
    if annotation in _SCALARS:
        return _SCALARS[annotation], (), None
    origin = get_origin(annotation)
    if origin is Literal:
        values = get_args(annotation)
        if all(isinstance(v, (str, int, float)) for v in values):
            return "literal", tuple(values), None
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        values = tuple(m.value for m in annotation)
        if all(isinstance(v, (str, int, float)) for v in values):
            return "enum", values, annotation
    elif origin is list and get_args(annotation) and get_args(annotation)[0] in _LISTS:
        return _LISTS[get_args(annotation)[0]], (), None
    raise ConfigurationError(
        f"contract field {name!r}: unsupported annotation {annotation!r}; use float, int, bool, str, "
        "Literal[...], an Enum, list[float], list[int], or Optional of these"
    )


def _read_metadata(name: str, kind: Kind, metadata: list[Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in metadata:
        if item is None or type(item).__name__ == "Strict":  # always strict anyway
            continue
        if isinstance(item, (at.Ge, at.Gt, at.Le, at.Lt, at.Interval)):
            values.update({b: getattr(item, b) for b in _BOUND_NAMES if getattr(item, b, None) is not None})
        elif hasattr(item, "allow_inf_nan"):
            values["allow_inf_nan"] = bool(item.allow_inf_nan)
        else:
            raise ConfigurationError(f"contract field {name!r}: unsupported constraint {item!r}")
    if kind not in _NUMERIC and any(b in values for b in _BOUND_NAMES):
        raise ConfigurationError(f"contract field {name!r}: bounds apply to float and int fields only")
    for b in _BOUND_NAMES:
        if b in values and (isinstance(values[b], bool) or not isinstance(values[b], (int, float))):
            raise ConfigurationError(f"contract field {name!r}: bound {b}={values[b]!r} is not a number")
    return values


def category_key(value: Any) -> tuple[str, Any]:
    """How a category value compares: bools apart from numbers (unlike pydantic, True is not 1)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("num", value)
    return (type(value).__name__ if not isinstance(value, str) else "str", value)


def definition(specs: tuple[FieldSpec, ...], forbid: bool) -> dict[str, Any]:
    """The canonical, JSON-able definition of a contract: what its version hashes."""
    return {"extra": "forbid" if forbid else "allow", "fields": [_field_definition(s) for s in specs]}


def _field_definition(spec: FieldSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": spec.name, "kind": spec.kind, "nullable": spec.nullable}
    out["required"] = spec.required
    out.update({b: _canonical_number(v) for b, v in spec.bounds()})
    if spec.kind in ("float", "list_float"):
        out["allow_inf_nan"] = spec.allow_inf_nan
    if spec.enum is not None:
        out["members"] = sorted([m.name, *category_key(m.value)] for m in spec.enum)
    elif spec.categories:
        out["categories"] = sorted(category_key(c) for c in spec.categories)
    return out


def _canonical_number(value: Bound) -> Bound:
    """0 and 0.0 bound a number the same way, so they hash the same."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def version_of(specs: tuple[FieldSpec, ...], forbid: bool) -> str:
    """A 16-hex-char hash of the definition; independent of class name, module and docstring."""
    text = json.dumps(definition(specs, forbid), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
