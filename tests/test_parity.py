"""Training/serving parity: assert_same_features and replay."""

from __future__ import annotations

from typing import Any

import pytest

from modeltel._contract.parity import assert_same_features, replay

INPUTS = [{"amount_cents": 1250 + i, "country": "DE" if i % 2 else "FR"} for i in range(10)]


def training_features(raw: dict[str, Any]) -> dict[str, Any]:
    return {"amount": raw["amount_cents"] / 100, "is_de": raw["country"] == "DE"}


def serving_scaled(raw: dict[str, Any]) -> dict[str, Any]:
    return {**training_features(raw), "amount": raw["amount_cents"] * 10.0}  # forgot: cents, x1000 off


def model(features: dict[str, Any]) -> float:
    return 0.01 * features["amount"] + (0.5 if features["is_de"] else 0.0)


def test_identical_pipelines_pass() -> None:
    """Two pipelines producing the same features raise nothing."""
    assert_same_features(training_features, lambda raw: dict(training_features(raw)), INPUTS)


def test_scaled_feature_fails_with_readable_diff() -> None:
    """A feature scaled by 1000 is named, with its count, first input and both values."""
    with pytest.raises(AssertionError) as failure:
        assert_same_features(training_features, serving_scaled, INPUTS)
    message = str(failure.value)
    first = training_features(INPUTS[0])["amount"]
    assert "amount: 10/10 inputs differ; first at input 0" in message
    assert f"training={first!r} serving={first * 1000!r}" in message and "is_de" not in message


def test_feature_only_on_one_side_is_reported() -> None:
    """A feature the serving pipeline drops is reported as only in training."""
    with pytest.raises(AssertionError, match="is_de: only in training"):
        assert_same_features(training_features, lambda raw: {"amount": raw["amount_cents"] / 100}, INPUTS)


def test_tolerance_is_respected() -> None:
    """Differences within rtol are not disagreements."""
    nudged = lambda raw: {**training_features(raw), "amount": raw["amount_cents"] / 100 * (1 + 1e-12)}  # noqa: E731
    assert_same_features(training_features, nudged, INPUTS)


def production_records(serving_fn: Any) -> list[dict[str, Any]]:
    return [
        {"features": serving_fn(raw), "score": model(serving_fn(raw)), "prediction_id": f"p{i}", "raw": raw}
        for i, raw in enumerate(INPUTS)
    ]


def test_replay_finds_planted_skew() -> None:
    """Replaying records served with a scaled feature flags that feature and the score."""
    report = replay(production_records(serving_scaled), training_features, model)
    amount = report.features["amount"]
    assert report.skewed_features() == ["amount"]
    assert (amount.compared, amount.disagreeing) == (10, 10) and amount.mean_ratio == pytest.approx(1000)
    assert report.score.disagreeing == 10 and "amount" in report.format()


def test_replay_reports_no_skew_when_pipelines_agree() -> None:
    """Records served by the training pipeline itself show no skew at all."""
    report = replay(production_records(training_features), training_features, model)
    assert report.skewed_features() == [] and report.score.disagreeing == 0
    assert report.features["amount"].max_abs_diff == 0.0 and report.records == len(INPUTS)


def test_replay_without_raw_compares_model_only() -> None:
    """Without raw inputs, replay scores the logged features and compares only the score."""
    records = [{k: v for k, v in r.items() if k != "raw"} for r in production_records(training_features)]
    report = replay(records, training_features, lambda f: model(f) + 1.0)
    assert report.features == {} and report.score.max_abs_diff == pytest.approx(1.0)
