"""Single-row contract checks: every violation kind, inputs, sensitivity, versions, pickling."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
import textwrap
from enum import Enum
from typing import Any, Literal, Optional

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, Field, create_model

from modeltel._contract.contract import Contract, Violation, compile_contract, sensitive
from modeltel._errors import ConfigurationError, ContractViolation


class Country(Enum):
    DE = "DE"
    FR = "FR"


class Features(BaseModel):
    amount: float = Field(ge=0, le=1_000_000.0)
    age: int = Field(gt=17, lt=130)
    country: Literal["DE", "FR", "US"]
    home: Country
    is_new: bool
    merchant: str
    discount: Optional[float] = None  # noqa: UP045 (the spelling under test)
    email: str = sensitive()


VALID: dict[str, Any] = {
    "amount": 12.5,
    "age": 30,
    "country": "DE",
    "home": Country.FR,
    "is_new": False,
    "merchant": "m-1",
    "discount": 0.1,
    "email": "a@example.com",
}
CONTRACT = compile_contract(Features)
CANARY = "canary-7f3a9c-secret"


def kinds(features: dict[str, Any]) -> list[tuple[str, str]]:
    return [(v.feature, v.kind) for v in CONTRACT.check(features)]


def with_(**changes: Any) -> dict[str, Any]:
    return {**VALID, **changes}


def test_valid_payload_has_no_violations() -> None:
    """A payload honouring every rule gives []."""
    assert CONTRACT.check(VALID) == []


def test_absent_field_with_default_is_fine() -> None:
    """An optional feature with a default may be left out."""
    assert CONTRACT.check({k: v for k, v in VALID.items() if k != "discount"}) == []


def test_missing_required_feature() -> None:
    """A required feature that is absent is reported as missing."""
    assert kinds({k: v for k, v in VALID.items() if k != "age"}) == [("age", "missing")]


@pytest.mark.parametrize(
    ("feature", "value"),
    [
        ("amount", True),
        ("amount", "12.5"),
        ("age", "30"),
        ("age", 30.0),
        ("age", False),
        ("is_new", 1),
        ("merchant", 5),
    ],
)
def test_wrong_type(feature: str, value: Any) -> None:
    """Strict types: bool is not a number, strings are not numbers, floats are not ints."""
    assert kinds(with_(**{feature: value})) == [(feature, "type")]


def test_int_is_accepted_for_float() -> None:
    """As in pydantic strict mode, an int is a valid float."""
    assert CONTRACT.check(with_(amount=12)) == []


def test_numpy_scalars_count_as_python_values() -> None:
    """The documented difference from pydantic strict: numpy scalars pass as their Python types."""
    assert CONTRACT.check(with_(amount=np.float64(3), age=np.int64(40), is_new=np.bool_(True))) == []


@pytest.mark.parametrize(
    ("feature", "value", "rule"),
    [("amount", -0.5, "ge=0"), ("amount", 2e6, "le=1000000.0"), ("age", 17, "gt=17"), ("age", 130, "lt=130")],
)
def test_range(feature: str, value: Any, rule: str) -> None:
    """Each of ge / gt / le / lt is enforced and named in the rule."""
    (violation,) = CONTRACT.check(with_(**{feature: value}))
    assert (violation.feature, violation.kind, violation.rule) == (feature, "range", rule)


def test_literal_category() -> None:
    """A value outside a Literal's categories is a category violation listing them."""
    (violation,) = CONTRACT.check(with_(country="IT"))
    assert (violation.kind, violation.rule) == ("category", "one of ['DE', 'FR', 'US']")


def test_enum_category() -> None:
    """An Enum field rejects values that are no member's value."""
    assert kinds(with_(home="IT")) == [("home", "category")]


def test_enum_accepts_member_value() -> None:
    """The documented choice: an Enum field accepts a member's value as well as the member."""
    assert CONTRACT.check(with_(home="DE")) == []


def test_null_for_non_optional() -> None:
    """None is a null violation unless the field is Optional."""
    assert kinds(with_(merchant=None, discount=None)) == [("merchant", "null")]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite(value: float) -> None:
    """NaN and infinities break a float field by default."""
    assert kinds(with_(discount=value)) == [("discount", "non_finite")]


def test_allow_inf_nan_opts_in() -> None:
    """Field(allow_inf_nan=True) lets NaN and inf through."""
    model = create_model("Loose", x=(float, Field(allow_inf_nan=True)))
    assert compile_contract(model).check({"x": float("nan")}) == []


def test_unexpected_feature() -> None:
    """A feature the model does not declare is reported as unexpected."""
    assert kinds(with_(surprise=1)) == [("surprise", "unexpected")]


@pytest.mark.parametrize("policy", ["allow", "ignore"])
def test_extra_allowed_by_config(policy: str) -> None:
    """extra='allow' or 'ignore' in the model config lets unknown features through."""
    model = create_model("Open", __config__=ConfigDict(extra=policy), x=(float, ...))  # type: ignore[call-overload]
    assert compile_contract(model).check({"x": 1.0, "y": 2}) == []


def test_every_violation_is_reported() -> None:
    """All broken rules of one call come back, not just the first."""
    found = kinds(
        {
            "amount": -1.0,
            "age": "x",
            "country": "IT",
            "home": Country.DE,
            "is_new": None,
            "merchant": "m",
            "email": "e",
            "zzz": 0,
        }
    )
    assert found == [
        ("amount", "range"),
        ("age", "type"),
        ("country", "category"),
        ("is_new", "null"),
        ("zzz", "unexpected"),
    ]


def test_violation_str_names_feature_kind_and_rule() -> None:
    """str(violation) carries the feature, the kind, the rule and the type it got."""
    (violation,) = CONTRACT.check(with_(amount=-1.0))
    assert str(violation) == "amount: range (ge=0; got float)"
    assert str(dataclasses.replace(violation, row=3)) == "row 3: amount: range (ge=0; got float)"


def test_pydantic_instance_input() -> None:
    """A pydantic instance is checked through its field values."""
    assert CONTRACT.check(Features(**VALID)) == []


def test_dataclass_input() -> None:
    """A dataclass instance is checked through its fields."""

    @dataclasses.dataclass
    class Row:
        x: float
        y: str

    model = create_model("XY", x=(float, Field(ge=0)), y=(str, ...))
    assert [v.kind for v in compile_contract(model).check(Row(x=-1.0, y="a"))] == ["range"]


def test_sensitive_marker_is_recorded() -> None:
    """sensitive() marks the feature on the compiled contract."""
    assert CONTRACT.sensitive == frozenset({"email"})


@pytest.mark.parametrize("annotation", [int, Literal["a", "b"]])
def test_sensitive_value_never_reaches_violations(annotation: Any) -> None:
    """A sensitive feature's value appears in no violation's str() or repr(), nor the exception."""
    model = create_model("Secret", token=(annotation, sensitive()))
    violations = compile_contract(model).check({"token": CANARY, "other": CANARY})
    texts = [str(v) for v in violations] + [repr(v) for v in violations]
    texts.append(str(ContractViolation("m", violations)))
    assert len(violations) == 2 and not any(CANARY in t for t in texts)


def test_unsupported_annotation_names_the_field() -> None:
    """An annotation the contract cannot check fails at compile time, naming the field."""
    model = create_model("Bad", when=(dict[str, int], ...))
    with pytest.raises(ConfigurationError, match="'when'"):
        compile_contract(model)


def test_unsupported_constraint_names_the_field() -> None:
    """A constraint the contract cannot check (here max_length) is refused, not ignored."""
    model = create_model("Bad", code=(str, Field(max_length=3)))
    with pytest.raises(ConfigurationError, match="'code'"):
        compile_contract(model)


def test_list_of_floats() -> None:
    """list[float] accepts lists, tuples and 1-D arrays of numbers; rejects others and NaN items."""
    contract = compile_contract(create_model("Emb", v=(list[float], ...)))
    assert [contract.check({"v": x}) for x in ([1.0, 2], (1.0,), np.arange(3.0))] == [[], [], []]
    assert [v.kind for x in (["a"], [True], [float("nan")]) for v in contract.check({"v": x})] == [
        "type",
        "type",
        "non_finite",
    ]


VERSION_SCRIPT = textwrap.dedent("""
    from typing import Literal, Optional
    from pydantic import BaseModel, Field
    from modeltel._contract.contract import compile_contract
    class Features(BaseModel):
        amount: float = Field(ge=0, le=1_000_000.0)
        country: Literal["DE", "FR", "US"]
        discount: Optional[float] = None
    print(compile_contract(Features).version)
""")


def test_version_is_stable_across_processes() -> None:
    """The version of the same definition is identical in two fresh interpreters."""
    runs = [
        subprocess.run([sys.executable, "-c", VERSION_SCRIPT], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    versions = {r.stdout.strip() for r in runs}
    assert len(versions) == 1 and len(versions.pop()) == 16


def test_version_ignores_class_name_and_changes_with_a_bound() -> None:
    """Renaming the model keeps the version; changing a bound changes it."""
    first = compile_contract(create_model("A", x=(float, Field(ge=0))))
    renamed = compile_contract(create_model("B", __doc__="doc", x=(float, Field(ge=0))))
    tighter = compile_contract(create_model("A", x=(float, Field(ge=1))))
    assert first.version == renamed.version != tighter.version


def test_pickle_round_trip() -> None:
    """A pickled contract comes back with the same version and the same checks."""
    restored = pickle.loads(pickle.dumps(CONTRACT))
    assert isinstance(restored, Contract) and restored.version == CONTRACT.version
    assert restored.check(with_(age=5)) == CONTRACT.check(with_(age=5))


def test_pickle_round_trip_of_dynamic_model() -> None:
    """A contract of a model pickle cannot import (create_model) survives pickling too."""
    contract = compile_contract(create_model("Dyn", x=(float, Field(le=2))))
    restored = pickle.loads(pickle.dumps(contract))
    assert restored.version == contract.version and restored.check({"x": 3.0}) == contract.check({"x": 3.0})


def test_contract_is_immutable() -> None:
    """Setting an attribute on a compiled contract fails."""
    with pytest.raises(AttributeError):
        CONTRACT.version = "x"  # type: ignore[misc]


def test_violation_holds_no_value() -> None:
    """A Violation has exactly feature, kind, rule, value_type and row."""
    assert [f.name for f in dataclasses.fields(Violation)] == ["feature", "kind", "rule", "value_type", "row"]


def test_a_feature_name_that_is_no_identifier_is_an_alias() -> None:
    """``Field(alias="mean radius")`` checks the feature "mean radius" in dicts, batches and
    pydantic instances, and survives the JSON round trip."""
    from pydantic import ConfigDict, Field

    class Cancer(BaseModel):
        model_config = ConfigDict(extra="forbid", populate_by_name=True)
        mean_radius: float = Field(alias="mean radius", ge=0)
        age: int

    contract = compile_contract(Cancer)
    assert contract.fields == ("mean radius", "age")
    assert contract.check({"mean radius": 14.2, "age": 50}) == []
    assert [(v.feature, v.kind) for v in contract.check({"mean radius": -1.0, "age": 50})] == [
        ("mean radius", "range")
    ]
    assert {(v.feature, v.kind) for v in contract.check({"mean_radius": 1.0, "age": 50})} == {
        ("mean radius", "missing"),
        ("mean_radius", "unexpected"),
    }
    assert contract.check(Cancer(**{"mean radius": 3.0, "age": 1})) == []
    again = Contract.from_json(contract.to_json())
    assert again.version == contract.version and again.fields == contract.fields
    assert again.check({"mean radius": -1.0, "age": 50})[0].kind == "range"
