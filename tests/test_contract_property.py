"""Property: on Python values, a contract accepts a payload iff pydantic strict validation does.

The documented differences are aligned, not hidden: floats carry allow_inf_nan=False (the
contract's default), models set extra="forbid" (the contract's default), categories are strings
(the contract keeps True apart from 1), no Enums (the contract also accepts member values), and
only Python values are generated (the contract also accepts numpy scalars).
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from modeltel._contract.contract import compile_contract

NAMES = [f"f{i}" for i in range(6)]
ODD_VALUES = [None, True, False, "x", "30", 0, -1, 10**6, 0.5, -2.5, 1e300, float("nan"), float("inf"), [1.0]]
CATEGORIES = ["a", "b", "c", "d"]


@st.composite
def field_specs(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["float", "int", "bool", "str", "literal"]))
    spec: dict[str, Any] = {"kind": kind, "optional": draw(st.booleans()), "has_default": draw(st.booleans())}
    if kind in ("float", "int"):
        low = draw(st.none() | st.integers(-5, 5))
        high = draw(st.none() | st.integers(5, 20))
        spec["bounds"] = {draw(st.sampled_from(["ge", "gt"])): low, draw(st.sampled_from(["le", "lt"])): high}
    if kind == "literal":
        spec["categories"] = draw(st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3, unique=True))
    return spec


def build_model(specs: dict[str, dict[str, Any]]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, spec in specs.items():
        base: Any = {"float": float, "int": int, "bool": bool, "str": str}.get(spec["kind"])
        if spec["kind"] == "literal":
            base = Literal.__getitem__(tuple(spec["categories"]))
        options = {k: v for k, v in spec.get("bounds", {}).items() if v is not None}
        if spec["kind"] == "float":
            options["allow_inf_nan"] = False
        if spec["has_default"]:
            options["default"] = None
        fields[name] = (Optional[base] if spec["optional"] else base, Field(**options))  # noqa: UP045
    return create_model("Random", __config__=ConfigDict(extra="forbid"), **fields)


def plausible_value(spec: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind = spec["kind"]
    if kind == "float":
        return st.floats(-30, 30) | st.integers(-30, 30)
    if kind == "int":
        return st.integers(-30, 30)
    if kind == "bool":
        return st.booleans()
    if kind == "str":
        return st.text(max_size=3)
    return st.sampled_from(CATEGORIES)


@st.composite
def cases(draw: st.DrawFn) -> tuple[type[BaseModel], dict[str, Any]]:
    count = draw(st.integers(1, len(NAMES)))
    specs = {name: draw(field_specs()) for name in NAMES[:count]}
    payload: dict[str, Any] = {}
    for name, spec in specs.items():
        action = draw(st.sampled_from(["plausible"] * 4 + ["odd", "omit"]))
        if action == "plausible":
            payload[name] = draw(plausible_value(spec))
        elif action == "odd":
            payload[name] = draw(st.sampled_from(ODD_VALUES))
    if draw(st.integers(0, 9)) == 0:
        payload["extra_feature"] = 1
    return build_model(specs), payload


def pydantic_accepts(model: type[BaseModel], payload: dict[str, Any]) -> bool:
    try:
        model.model_validate(payload, strict=True)
    except ValidationError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(cases())
def test_contract_agrees_with_pydantic_strict(case: tuple[type[BaseModel], dict[str, Any]]) -> None:
    """check(payload) == [] exactly when Model.model_validate(payload, strict=True) succeeds."""
    model, payload = case
    assert (compile_contract(model).check(payload) == []) == pydantic_accepts(model, payload)
