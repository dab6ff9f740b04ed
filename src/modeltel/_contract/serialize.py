"""A contract's definition as JSON, and back to a pydantic model (``pydantic.create_model``)."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from modeltel._contract.spec import FieldSpec
from modeltel._errors import ConfigurationError

FORMAT = "modeltel.contract/1"
_BASE: dict[str, Any] = {"float": float, "int": int, "bool": bool, "str": str}
_LIST: dict[str, Any] = {"list_float": list[float], "list_int": list[int]}


def contract_to_json(name: str, specs: tuple[FieldSpec, ...], forbid: bool, version: str) -> str:
    """Serialise the specs (the version is informative: ``from_json`` recomputes it)."""
    document = {
        "format": FORMAT,
        "name": name,
        "version": version,
        "extra": "forbid" if forbid else "allow",
        "fields": [_field_to_json(s) for s in specs],
    }
    return json.dumps(document, indent=2)


def _field_to_json(spec: FieldSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": spec.name, "type": spec.kind, "nullable": spec.nullable}
    out["required"] = spec.required
    if not spec.required:
        out["default"] = _json_default(spec.default)
    out.update(dict(spec.bounds()))
    if spec.allow_inf_nan:
        out["allow_inf_nan"] = True
    if spec.sensitive:
        out["sensitive"] = True
    if spec.enum is not None:
        out["enum"] = {"name": spec.enum.__name__, "members": [[m.name, m.value] for m in spec.enum]}
    elif spec.categories:
        out["categories"] = list(spec.categories)
    return out


def _json_default(value: Any) -> Any:
    """Defaults never change a check; keep the JSON-able ones so the rebuilt model matches."""
    if isinstance(value, Enum):
        value = value.value
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return value


def model_from_json(text: str) -> type[BaseModel]:
    """Rebuild a pydantic model equivalent (same version, same checks) to the serialised contract."""
    document = json.loads(text)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ConfigurationError(f"not a modeltel contract document (expected format {FORMAT!r})")
    fields = {_attribute(f["name"], i): _field_from_json(f) for i, f in enumerate(document["fields"])}
    config = ConfigDict(extra="forbid" if document["extra"] == "forbid" else "allow")
    model: type[BaseModel] = create_model(document["name"], __config__=config, **fields)  # type: ignore[call-overload]
    return model


def _attribute(feature: str, position: int) -> str:
    """A Python name for the field of ``feature`` (the feature itself where it is one)."""
    return feature if feature.isidentifier() and not feature.startswith("_") else f"field_{position}"


def _field_from_json(field: dict[str, Any]) -> tuple[Any, Any]:
    kind = field["type"]
    annotation = _annotation(field)
    if field["nullable"]:
        annotation = Optional[annotation]  # noqa: UP045 (a runtime type expression)
    options: dict[str, Any] = {b: field[b] for b in ("ge", "gt", "le", "lt") if b in field}
    if kind in ("float", "list_float") and field.get("allow_inf_nan"):
        options["allow_inf_nan"] = True
    if field.get("sensitive"):
        options["json_schema_extra"] = {"sensitive": True}
    name = field["name"]
    if not name.isidentifier() or name.startswith("_"):
        options["alias"] = name
    if not field["required"]:
        default = field.get("default")
        if "enum" in field and default is not None:
            default = annotation_enum(annotation)(default)
        options["default"] = default
    return annotation, Field(**options)


def _annotation(field: dict[str, Any]) -> Any:
    kind = field["type"]
    if kind in _BASE:
        return _BASE[kind]
    if kind in _LIST:
        return _LIST[kind]
    if kind == "enum":
        spec = field["enum"]
        return Enum(spec["name"], [(name, value) for name, value in spec["members"]])
    if kind == "literal":
        return Literal.__getitem__(tuple(field["categories"]))
    raise ConfigurationError(f"contract field {field['name']!r}: unknown type {kind!r}")


def annotation_enum(annotation: Any) -> type[Enum]:
    """The Enum class inside ``annotation`` (possibly Optional)."""
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, Enum):
            return candidate
    raise ConfigurationError(f"no Enum in {annotation!r}")
