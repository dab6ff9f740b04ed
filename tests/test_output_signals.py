"""Output sanity signals: class volumes, the in-flight gauge, timeout and score-range outcomes."""

from __future__ import annotations

import threading

import pytest

import modeltel
from modeltel import _names as n
from modeltel.testing import Capture, capture


def test_class_counts_are_exact_and_on_ml_predictions_only(cap: Capture) -> None:
    """A classifier's predicted classes are counted exactly; histograms are not split by class."""

    @modeltel.instrument(model="clf", version="1")
    def classify(features: dict[str, float]) -> dict[str, float]:
        return {"cat": features["c"], "dog": 1 - features["c"]}

    for c in (0.9, 0.8, 0.1, 0.7):
        classify({"c": c})
    assert cap.counter(n.M_PREDICTIONS, **{n.PREDICTED_CLASS: "cat"}) == 3
    assert cap.counter(n.M_PREDICTIONS, **{n.PREDICTED_CLASS: "dog"}) == 1
    (duration,) = cap.metric_points(n.M_DURATION)
    assert n.PREDICTED_CLASS not in duration.attributes and duration.count == 4


def test_predicted_class_callable_and_the_class_cap() -> None:
    """predicted_class= names the class; past max_classes distinct labels they become __other__."""

    @modeltel.instrument(model="clf2", version="1", predicted_class=lambda out: out["label"])
    def classify(features: dict[str, float]) -> dict[str, object]:
        return {"label": f"label-{int(features['i'])}", "score": 0.5}

    with capture(max_classes=5) as c:
        for i in range(1000):
            classify({"i": float(i)})
        classes = {p.attributes[n.PREDICTED_CLASS] for p in c.metric_points(n.M_PREDICTIONS)}
        other = c.counter(n.M_PREDICTIONS, **{n.PREDICTED_CLASS: "__other__"})
    assert len(classes) == 6 and other == 995


def test_in_flight_gauge_counts_running_predictions(cap: Capture) -> None:
    """While two calls block inside predict the gauge reads 2; afterwards 0."""
    inside, release = threading.Barrier(3), threading.Event()

    @modeltel.instrument(model="slow", version="1")
    def slow(features: dict[str, float]) -> float:
        inside.wait()
        release.wait()
        return 0.5

    threads = [threading.Thread(target=slow, args=({"x": 1.0},)) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()
    assert cap.counter(n.M_IN_FLIGHT, **{n.MODEL_NAME: "slow"}) == 2
    release.set()
    for t in threads:
        t.join()
    assert cap.counter(n.M_IN_FLIGHT, **{n.MODEL_NAME: "slow"}) == 0


def test_timeout_outcome_returns_the_answer_anyway(cap: Capture) -> None:
    """A call slower than timeout= is counted as timeout; its result still reaches the caller."""
    gate = threading.Event()

    @modeltel.instrument(model="t", version="1", timeout=0.001)
    def late(features: dict[str, float]) -> float:
        gate.wait(0.05)  # a slow model: bounded wait, nothing sets the event
        return 0.5

    assert late({"x": 1.0}) == 0.5
    assert cap.counter(n.M_PREDICTIONS, **{n.OUTCOME: n.TIMEOUT}) == 1


@pytest.mark.parametrize(
    ("score", "outcome"), [(0.5, n.OK), (1.5, n.SCORE_OUT_OF_RANGE), (-0.1, n.SCORE_OUT_OF_RANGE)]
)
def test_score_range(cap: Capture, score: float, outcome: str) -> None:
    """Scores outside score_range= get their own outcome."""

    @modeltel.instrument(model="r", version="1", score_range=(0, 1))
    def f(features: dict[str, float]) -> float:
        return score

    assert f({"x": 1.0}) == score
    assert cap.counter(n.M_PREDICTIONS, **{n.OUTCOME: outcome}) == 1


def test_bad_timeout_or_range_fails_at_decoration() -> None:
    """timeout=0 and an inverted range are configuration errors."""
    with pytest.raises(modeltel.ConfigurationError, match="timeout"):
        modeltel.instrument(model="m", version="1", timeout=0)(lambda features: 0.0)
    with pytest.raises(modeltel.ConfigurationError, match="score_range"):
        modeltel.instrument(model="m", version="1", score_range=(1, 0))(lambda features: 0.0)
