"""Feature sampling: deterministic by payload, always on errors, never carries sensitive values."""

from __future__ import annotations

import pytest

import modeltel
from modeltel.testing import capture


@modeltel.instrument(model="s", version="1", tenant="tenant", sensitive=["email"])
def predict(features: dict[str, object], tenant: str = "t") -> float:
    if features.get("explode"):
        raise RuntimeError("bad row")
    return 0.4


def _sampled_ids(rate: float, payloads: list[dict[str, object]]) -> list[bool]:
    with capture(feature_sample_rate=rate) as c:
        for p in payloads:
            predict(p)
        return [bool(s.attributes and s.attributes["ml.features.sampled"]) for s in c.spans]


def test_same_payload_is_always_in_or_out() -> None:
    """The decision depends only on the payload hash: two runs pick the same payloads."""
    payloads = [{"x": float(i)} for i in range(400)]
    first = _sampled_ids(0.25, payloads)
    assert first == _sampled_ids(0.25, payloads)
    assert 50 < sum(first) < 150  # about a quarter, and not all or none


@pytest.mark.parametrize(("rate", "expected"), [(0.0, 0), (1.0, 50)])
def test_rate_zero_and_one(rate: float, expected: int) -> None:
    """Rate 0 samples nothing, rate 1 everything."""
    assert sum(_sampled_ids(rate, [{"x": float(i)} for i in range(50)])) == expected


def test_records_carry_features_and_identity() -> None:
    """An ml.features record carries features, prediction id, hash, version, score and decision."""

    @modeltel.instrument(model="s", version="2", decision=lambda s: "ok")
    def f(features: dict[str, float]) -> float:
        return 0.75

    with capture(feature_sample_rate=1.0) as c:
        f({"a": 1.5})
        p = modeltel.current_prediction()
        (rec,) = c.feature_records()
    assert p is not None
    assert rec.log_record.body == {"features": {"a": 1.5}}
    assert dict(rec.log_record.attributes or {}) == {
        "ml.model.name": "s",
        "ml.model.version": "2",
        "ml.payload.hash.recipe": 2,
        "ml.tenant": "",
        "ml.prediction.id": p.prediction_id,
        "ml.payload.hash": p.payload_hash,
        "ml.outcome": "ok",
        "ml.prediction.score": 0.75,
        "ml.decision": "ok",
    }
    assert c.counter("ml.features.sampled") == 1


def test_errors_are_always_sampled() -> None:
    """A call that raises is sampled even at rate 0."""
    with capture(feature_sample_rate=0.0) as c:
        with pytest.raises(RuntimeError):
            predict({"explode": True})
        (rec,) = c.feature_records()
    assert rec.log_record.attributes is not None and rec.log_record.attributes["ml.outcome"] == "error"


def test_sensitive_features_never_leave_the_process() -> None:
    """A canary in a sensitive feature appears in no span, metric or log."""
    canary = "canary-7f3a@example.com"
    with capture(feature_sample_rate=1.0) as c:
        predict({"email": canary, "amount": 3.0})
        with pytest.raises(RuntimeError):
            predict({"email": canary, "explode": True})
        everything = repr([(s.name, dict(s.attributes or {}), s.events) for s in c.spans])
        everything += repr([(r.log_record.body, dict(r.log_record.attributes or {})) for r in c.logs])
        everything += repr(c.metric_points("ml.predictions"))
        bodies = [r.log_record.body for r in c.feature_records()]
    assert canary not in everything
    assert bodies[0] == {"features": {"amount": 3.0}}
