"""Contracts through the decorator: every violation kind in record, reject and fallback modes."""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, Field

import modeltel
from modeltel.testing import Capture, capture


class Tier(Enum):
    GOLD = "gold"
    BASIC = "basic"


class Features(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: float = Field(ge=0, le=1e6)
    country: Literal["DE", "FR", "US"]
    tier: Tier = Tier.BASIC
    account_age_days: int = Field(ge=0)
    email: str = modeltel.sensitive()
    referrer: str | None = None


VALID: dict[str, Any] = {"amount": 10.0, "country": "DE", "account_age_days": 30, "email": "a@b.c"}

# (kind, feature, the bad payload, a fragment of the rule in the message)
CASES = [
    ("missing", "country", {k: v for k, v in VALID.items() if k != "country"}, "required"),
    ("type", "amount", {**VALID, "amount": True}, "float"),
    ("type", "account_age_days", {**VALID, "account_age_days": "30"}, "int"),
    ("range", "amount", {**VALID, "amount": -1.0}, "ge=0"),
    ("category", "country", {**VALID, "country": "XX"}, "one of"),
    ("category", "tier", {**VALID, "tier": "platinum"}, "one of"),
    ("null", "country", {**VALID, "country": None}, "nullable"),
    ("non_finite", "amount", {**VALID, "amount": float("nan")}, "finite"),
    ("unexpected", "extra_feature", {**VALID, "extra_feature": 1.0}, "contract"),
]
IDS = [f"{kind}-{feature}" for kind, feature, _, _ in CASES]


def _cheap(features: dict[str, Any]) -> float:
    return -1.0


@modeltel.instrument(model="fraud", version="1", contract=Features, on_violation="record")
def predict_record(features: dict[str, Any]) -> float:
    return 0.2


@modeltel.instrument(model="fraud", version="1", contract=Features, on_violation="reject")
def predict_reject(features: dict[str, Any]) -> float:
    raise AssertionError("predict must not run on rejected input")


@modeltel.instrument(model="fraud", version="1", contract=Features, fallback=_cheap)
def predict_fallback(features: dict[str, Any]) -> float:
    raise AssertionError("predict must not run on invalid input when a fallback is given")


def _violations(cap: Capture, feature: str, kind: str) -> float:
    return cap.counter("ml.contract.violations", **{"ml.feature.name": feature, "ml.violation.kind": kind})


@pytest.mark.parametrize(("kind", "feature", "payload", "rule"), CASES, ids=IDS)
def test_record_mode_runs_predict_and_counts_the_violation(
    cap: Capture, kind: str, feature: str, payload: dict[str, Any], rule: str
) -> None:
    """record: predict answers, the violation is counted by feature and kind, and the call is sampled."""
    assert predict_record(payload) == 0.2
    assert _violations(cap, feature, kind) == 1
    (span,) = cap.spans
    assert span.attributes is not None
    assert f"{feature}:{kind}" in span.attributes["ml.contract.violations"]
    assert span.attributes["ml.outcome"] == "ok"
    assert len(cap.feature_records()) == 1


@pytest.mark.parametrize(("kind", "feature", "payload", "rule"), CASES, ids=IDS)
def test_reject_mode_raises_naming_feature_kind_and_rule(
    cap: Capture, kind: str, feature: str, payload: dict[str, Any], rule: str
) -> None:
    """reject: predict does not run; ContractViolation names feature, kind and rule."""
    with pytest.raises(modeltel.ContractViolation) as info:
        predict_reject(payload)
    message = str(info.value)
    assert feature in message and kind in message and rule in message
    assert any(v.feature == feature and v.kind == kind for v in info.value.violations)
    assert cap.counter("ml.predictions", **{"ml.outcome": "contract_violation"}) == 1
    assert _violations(cap, feature, kind) == 1


@pytest.mark.parametrize(("kind", "feature", "payload", "rule"), CASES, ids=IDS)
def test_fallback_mode_answers_with_the_fallback(
    cap: Capture, kind: str, feature: str, payload: dict[str, Any], rule: str
) -> None:
    """fallback: the fallback answers instead of predict; outcome fallback."""
    assert predict_fallback(payload) == -1.0
    assert cap.counter("ml.predictions", **{"ml.outcome": "fallback"}) == 1
    assert _violations(cap, feature, kind) == 1


def test_valid_input_records_no_violation(cap: Capture) -> None:
    """A valid payload passes every mode untouched and carries the contract version."""
    assert predict_record(VALID) == 0.2
    assert predict_fallback.__wrapped__ is not None
    assert cap.metric_points("ml.contract.violations") == []
    (span,) = cap.spans
    assert span.attributes is not None
    assert span.attributes["ml.contract.version"] == modeltel.compile_contract(Features).version


def test_env_var_sets_the_default_policy() -> None:
    """MODELTEL_ON_VIOLATION=reject applies where the decorator does not choose."""

    @modeltel.instrument(model="fraud", version="1", contract=Features)
    def predict(features: dict[str, Any]) -> float:
        return 0.2

    with capture(on_violation="reject"), pytest.raises(modeltel.ContractViolation):
        predict({**VALID, "amount": -3.0})


def test_sensitive_value_never_appears_in_telemetry_or_errors() -> None:
    """A canary in the sensitive email feature is in no span, metric, log or exception message."""
    canary = 987654321  # wrong type for email, so it is named in a violation
    with capture(feature_sample_rate=1.0) as c:
        predict_record({**VALID, "email": canary})
        with pytest.raises(modeltel.ContractViolation) as info:
            predict_reject({**VALID, "email": canary})
        everything = repr([(s.name, dict(s.attributes or {}), s.events) for s in c.spans])
        everything += repr([(r.log_record.body, dict(r.log_record.attributes or {})) for r in c.logs])
        everything += repr([p.attributes for p in c.metric_points("ml.contract.violations")])
    everything += str(info.value) + repr(info.value.violations)
    assert str(canary) not in everything


def test_batch_reject_lists_the_bad_rows(cap: Capture) -> None:
    """reject on a batch raises listing the bad row indices; predict does not run."""

    class Numeric(BaseModel):
        a: float = Field(ge=0)
        b: float = Field(le=10)

    @modeltel.instrument(model="batch", version="1", contract=Numeric, batch=True, on_violation="reject")
    def score(rows: np.ndarray) -> np.ndarray:
        raise AssertionError("not reached")

    rows = np.array([[1.0, 1.0], [-1.0, 1.0], [1.0, 1.0], [1.0, 11.0]])
    with pytest.raises(modeltel.ContractViolation) as info:
        score(rows)
    assert info.value.rows == (1, 3)
    assert cap.counter("ml.predictions", **{"ml.outcome": "contract_violation"}) == 4


def test_batch_record_counts_per_row(cap: Capture) -> None:
    """record on a batch: every row is a prediction; each bad row's violation is counted."""

    class Numeric(BaseModel):
        a: float = Field(ge=0)

    @modeltel.instrument(model="batch", version="1", contract=Numeric, batch=True)
    def score(rows: list[dict[str, float]]) -> list[float]:
        return [0.5] * len(rows)

    score([{"a": 1.0}, {"a": -1.0}, {"a": float("inf")}])
    assert cap.counter("ml.predictions", **{"ml.outcome": "ok"}) == 3
    assert cap.counter("ml.contract.violations", **{"ml.violation.kind": "range"}) == 1
    assert cap.counter("ml.contract.violations", **{"ml.violation.kind": "non_finite"}) == 1
