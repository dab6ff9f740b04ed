"""Sampled feature records in memory: what ``ml.features.sampled`` counts, the policy for features
a contract does not declare, and values the log pipeline could not carry as given.

The same behaviours over the real OTLP wire are in ``test_wire_features.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

import modeltel
from modeltel import ConfigurationError
from modeltel._config import load_settings
from modeltel.testing import capture

CANARY = "Jane Doe"
BIG = "x" * 500  # a feature past the max_feature_bytes=200 used below


@modeltel.instrument(model="sized", version="1", tenant="tenant")
def predict(features: dict[str, Any], tenant: str) -> float:
    return 0.5


@modeltel.instrument(model="sized", version="1", batch=True)
def predict_batch(rows: list[dict[str, Any]]) -> list[float]:
    return [0.5] * len(rows)


def _span_flags(spans: Any, batch: bool) -> list[Any]:
    return [s.attributes["ml.features.sampled"] for s in spans if ("ml.batch.size" in s.attributes) == batch]


def test_sampled_counts_the_features_emitted_and_drops_apart() -> None:
    """Records too large to send are counted as dropped, not as sampled, on the metric and the span."""
    with capture(feature_sample_rate=1.0, max_feature_bytes=200) as c:
        for i in range(40):
            predict({"x": float(i), **({"blob": BIG} if i % 4 == 0 else {})}, tenant="a")
        predict_batch([{"x": float(i), **({"blob": BIG} if i % 5 == 0 else {})} for i in range(20)])
        predict_batch([{"blob": BIG}] * 3)  # nothing of this call fits
        rows = c.feature_rows()
        sampled = c.counter("ml.features.sampled")
        dropped = c.counter("modeltel.features.dropped", reason="too_large")
        spans = c.spans
    assert len(rows) == 30 + 16
    assert sampled == len(rows)
    assert dropped == 10 + 4 + 3
    assert _span_flags(spans, batch=False).count(False) == 10
    assert _span_flags(spans, batch=True) == [True, False]


class OddValue:
    def __str__(self) -> str:
        return "odd-value"


def test_a_value_the_hash_cannot_hold_is_logged_as_its_text(lenient: None) -> None:
    """An object of no known type (its call gets no payload hash) is logged as its text when
    predict raises, instead of costing the error's feature record."""

    @modeltel.instrument(model="odd", version="1")
    def failing(features: dict[str, Any]) -> float:
        raise ValueError("model failed")

    with capture() as c:
        with pytest.raises(ValueError, match="model failed"):
            failing({"x": 1.0, "odd": OddValue()})
        rows = c.feature_rows()
        sampled = c.counter("ml.features.sampled")
    assert [r["features"] for r in rows] == [{"x": 1.0, "odd": "odd-value"}]
    assert sampled == 1


# ---------------------------------------------------------------- undeclared features


class Applicant(BaseModel):
    income: float
    age: int


class Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")
    income: float
    age: int


APPLICANT = {"income": 10.0, "age": 30}
WITH_CANARY = {**APPLICANT, "patient_name": CANARY}


def _logged(features: Any, contract: Any = Applicant, **options: Any) -> None:
    """One call of a model with ``contract``: its features are sampled (the capture's rate is 1)."""

    @modeltel.instrument(model="policy", version="1", contract=contract, **options)
    def score(features: Any) -> float:
        return 0.5

    score(features)


def _features_of(c: Any) -> list[dict[str, Any]]:
    return [r["features"] for r in c.feature_rows()]


def test_undeclared_feature_is_dropped_by_default_with_any_contract() -> None:
    """Default policy: the contract's features only, whatever its extra= says."""
    with capture(feature_sample_rate=1.0) as c:
        _logged(WITH_CANARY)
        _logged(WITH_CANARY, contract=Lenient)
        _logged(Lenient(income=10.0, age=30, patient_name=CANARY), contract=Lenient)
        logged = _features_of(c)
    assert logged == [APPLICANT, APPLICANT, APPLICANT]


def test_without_a_contract_every_feature_is_logged() -> None:
    with capture(feature_sample_rate=1.0) as c:
        _logged(WITH_CANARY, contract=None)
        logged = _features_of(c)
    assert logged == [WITH_CANARY]


@pytest.mark.parametrize(
    ("setting", "keyword", "expected"),
    [
        ("keep", None, CANARY),
        ("drop", "keep", CANARY),
        ("keep", "drop", None),
        ("drop", "hash", modeltel.payload_hash(CANARY)),
    ],
)
def test_policy_from_setting_or_keyword(setting: str, keyword: str | None, expected: str | None) -> None:
    """``undeclared_features=`` on the decorator beats the setting (MODELTEL_UNDECLARED_FEATURES)."""
    options = {} if keyword is None else {"undeclared_features": keyword}
    with capture(feature_sample_rate=1.0, undeclared_features=setting) as c:
        _logged(WITH_CANARY, **options)
        (logged,) = _features_of(c)
    assert logged.get("patient_name") == expected
    assert {k: v for k, v in logged.items() if k != "patient_name"} == APPLICANT


def test_sensitive_features_stay_out_under_keep() -> None:
    class Patient(BaseModel):
        model_config = ConfigDict(extra="allow")
        age: int
        email: str = modeltel.sensitive()

    with capture(feature_sample_rate=1.0, undeclared_features="keep") as c:
        _logged({"age": 30, "email": "a@b.c", "patient_name": CANARY}, contract=Patient)
        logged = _features_of(c)
    assert logged == [{"age": 30, "patient_name": CANARY}]


@pytest.mark.parametrize("policy", ["drop", "hash", "keep"])
def test_policy_applies_to_array_columns(policy: str) -> None:
    """A 2-D array whose ``columns=`` name a feature the contract does not declare."""
    matrix = np.array([[10.0, 30.0, 123.0], [20.0, 40.0, 456.0]])

    @modeltel.instrument(
        model="matrix", version="1", contract=Applicant, batch=True, columns=["income", "age", "ssn"]
    )
    def score(rows: Any) -> list[float]:
        return [0.5] * len(rows)

    with capture(feature_sample_rate=1.0, undeclared_features=policy) as c:
        score(matrix)
        ssn = [r["features"].get("ssn") for r in c.feature_rows()]
        incomes = [r["features"]["income"] for r in c.feature_rows()]
    assert incomes == [10.0, 20.0]
    assert (
        ssn
        == {
            "drop": [None, None],
            "hash": [modeltel.payload_hash(123.0), modeltel.payload_hash(456.0)],
            "keep": [123.0, 456.0],
        }[policy]
    )


def test_a_bad_policy_names_the_variable_or_keyword() -> None:
    with pytest.raises(
        ConfigurationError, match=r"MODELTEL_UNDECLARED_FEATURES='sometimes'.*drop, hash, keep"
    ):
        load_settings(environ={"MODELTEL_UNDECLARED_FEATURES": "sometimes"})
    with pytest.raises(ConfigurationError, match="undeclared_features='sometimes'"):
        modeltel.instrument(model="m", version="1", undeclared_features="sometimes")(lambda features: 0.5)
