"""@instrument and prediction(): what each call records, through the public API."""

from __future__ import annotations

import asyncio
import inspect

import numpy as np
import pytest

import modeltel
from modeltel.testing import Capture

ATTRS = {"ml.model.name": "fraud", "ml.model.version": "3.2.0"}


@modeltel.instrument(
    model="fraud", version="3.2.0", tenant="tenant", decision=lambda s: "review" if s > 0.5 else "approve"
)
def predict(features: dict[str, float], tenant: str) -> float:
    """Score a transaction."""
    return features["amount"] / 100.0


def test_span_carries_model_tenant_id_hash_score_and_decision(cap: Capture) -> None:
    """One call gives one `predict {model}` span with every ml.* attribute."""
    assert predict({"amount": 70.0}, tenant="acme") == 0.7
    (span,) = cap.spans
    p = modeltel.current_prediction()
    assert p is not None
    assert span.name == "predict fraud"
    assert dict(span.attributes or {}) == {
        **ATTRS,
        "ml.tenant": "acme",
        "ml.prediction.id": p.prediction_id,
        "ml.payload.hash": modeltel.payload_hash({"amount": 70.0}),
        "ml.payload.hash.recipe": 2,
        "ml.prediction.score": 0.7,
        "ml.decision": "review",
        "ml.outcome": "ok",
        "ml.features.sampled": False,
    }


def test_metrics_count_duration_and_score(cap: Capture) -> None:
    """ml.predictions, ml.prediction.duration and ml.prediction.score get one record per call."""
    for amount in (10.0, 20.0, 30.0):
        predict({"amount": amount}, tenant="acme")
    attrs = {**ATTRS, "ml.tenant": "acme", "ml.outcome": "ok"}
    assert cap.counter("ml.predictions", **attrs) == 3
    assert cap.histogram_count("ml.prediction.duration", **attrs) == 3
    (score,) = cap.metric_points("ml.prediction.score", **attrs)
    assert (score.count, score.sum, score.min, score.max) == (3, pytest.approx(0.6), 0.1, 0.3)


def test_predict_exception_is_the_same_object_and_counted(cap: Capture) -> None:
    """A predict error reaches the caller unchanged and is counted with outcome error."""
    boom = ValueError("model exploded")

    @modeltel.instrument(model="fraud", version="3.2.0")
    def failing(features: dict[str, float]) -> float:
        raise boom

    with pytest.raises(ValueError) as info:
        failing({"amount": 1.0})
    assert info.value is boom
    assert cap.counter("ml.predictions", **{"ml.outcome": "error"}) == 1
    (span,) = cap.spans
    assert span.attributes is not None and span.attributes["ml.outcome"] == "error"
    assert span.events[0].name == "exception"


def test_wrapped_function_keeps_name_doc_and_signature() -> None:
    """functools.wraps semantics: name, docstring and signature survive."""
    assert predict.__name__ == "predict"
    assert predict.__doc__ == "Score a transaction."
    assert list(inspect.signature(predict).parameters) == ["features", "tenant"]


def test_methods_take_features_after_self(cap: Capture) -> None:
    """On a method, features default to the first argument after self."""

    class Model:
        @modeltel.instrument(model="ranker", version="7", tenant="tenant")
        def predict(self, features: dict[str, float], *, tenant: str) -> float:
            return 0.5

    Model().predict({"x": 1.0}, tenant="beta")
    (span,) = cap.spans
    assert span.attributes is not None
    assert span.attributes["ml.payload.hash"] == modeltel.payload_hash({"x": 1.0})
    assert span.attributes["ml.tenant"] == "beta"


def test_keyword_arguments_and_tenant_callable(cap: Capture) -> None:
    """features= and tenant= work for keyword calls; tenant may be a callable on the arguments."""

    @modeltel.instrument(model="m", version="1", features="row", tenant=lambda row, ctx: ctx["org"])
    def score(row: dict[str, float], ctx: dict[str, str]) -> float:
        return 0.1

    score(ctx={"org": "initech"}, row={"a": 2.0})
    (span,) = cap.spans
    assert span.attributes is not None
    assert span.attributes["ml.tenant"] == "initech"
    assert span.attributes["ml.payload.hash"] == modeltel.payload_hash({"a": 2.0})


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (np.float32(0.25), 0.25),
        (np.array([0.4]), 0.4),
        (np.array([0.3, 0.7]), 0.7),
        ({"cat": 0.2, "dog": 0.5, "fish": 0.3}, 0.5),
        (np.array(0.9), 0.9),
    ],
)
def test_default_score_extraction(cap: Capture, output: object, expected: float) -> None:
    """Numpy scalars, arrays, probability pairs and class dicts all give a score."""

    @modeltel.instrument(model="m", version="1")
    def f(features: dict[str, float]) -> object:
        return output

    f({"a": 1.0})
    (span,) = cap.spans
    assert span.attributes is not None
    assert span.attributes["ml.prediction.score"] == pytest.approx(expected)


def test_non_finite_scores_are_counted_not_recorded(cap: Capture) -> None:
    """A NaN score is counted in ml.prediction.score.non_finite and kept out of the histogram."""

    @modeltel.instrument(model="m", version="1")
    def f(features: dict[str, float]) -> float:
        return features["s"]

    for s in (0.5, float("nan"), float("inf")):
        f({"s": s})
    assert cap.histogram_count("ml.prediction.score") == 1
    assert cap.counter("ml.prediction.score.non_finite") == 2
    assert cap.counter("ml.predictions") == 3


def test_async_predictions_get_their_own_spans_and_durations(cap: Capture) -> None:
    """Concurrent async calls each get a span with their own tenant and a duration that covers the await."""

    @modeltel.instrument(model="async", version="1", tenant="tenant")
    async def apredict(features: dict[str, float], tenant: str, release: asyncio.Event) -> float:
        await release.wait()
        return features["x"]

    async def main() -> list[float]:
        release = asyncio.Event()
        tasks = [asyncio.create_task(apredict({"x": i / 10}, f"t{i}", release)) for i in range(8)]
        await asyncio.sleep(0)
        release.set()
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == [i / 10 for i in range(8)]
    spans = cap.spans
    assert sorted(s.attributes["ml.tenant"] for s in spans if s.attributes) == [f"t{i}" for i in range(8)]
    for s in spans:
        assert s.attributes is not None
        assert s.attributes["ml.prediction.score"] == int(str(s.attributes["ml.tenant"])[1:]) / 10
        assert s.end_time is not None and s.start_time is not None and s.end_time > s.start_time
    assert len({s.attributes["ml.prediction.id"] for s in spans if s.attributes}) == 8


def test_context_manager_records_score_and_decision(cap: Capture) -> None:
    """prediction() gives the same span and metrics as the decorator, with p.record()."""
    with modeltel.prediction(model="fraud", version="3.2.0", tenant="acme", features={"amount": 5.0}) as p:
        p.record(score=0.93, decision="approved")
    (span,) = cap.spans
    assert span.attributes is not None
    assert span.attributes["ml.prediction.id"] == p.prediction_id
    assert span.attributes["ml.decision"] == "approved"
    assert cap.counter("ml.predictions", **{"ml.outcome": "ok", "ml.tenant": "acme"}) == 1


def test_async_context_manager(cap: Capture) -> None:
    """`async with prediction()` works like the sync form."""

    async def main() -> str:
        async with modeltel.prediction(model="m", version="1", features={"a": 1.0}) as p:
            p.record(score=0.1)
        return p.prediction_id

    pid = asyncio.run(main())
    (span,) = cap.spans
    assert span.attributes is not None and span.attributes["ml.prediction.id"] == pid


def test_context_manager_error_passes_through(cap: Capture) -> None:
    """An exception in the block is recorded and not swallowed."""
    with pytest.raises(KeyError), modeltel.prediction(model="m", version="1", features={"a": 1.0}):
        raise KeyError("missing")
    assert cap.counter("ml.predictions", **{"ml.outcome": "error"}) == 1


def test_current_prediction_inside_and_after_the_call(cap: Capture) -> None:
    """Inside predict, current_prediction() is the call; after it returns, the caller reads the same one."""
    seen = []

    @modeltel.instrument(model="m", version="1")
    def f(features: dict[str, float]) -> float:
        p = modeltel.current_prediction()
        assert p is not None
        p.record(decision="inside")
        seen.append(p.prediction_id)
        return 0.2

    f({"a": 1.0})
    after = modeltel.current_prediction()
    assert after is not None and after.prediction_id == seen[0]
    assert after.decision == "inside"


def test_prediction_ids_are_unique() -> None:
    """Ids differ call to call."""
    from modeltel.testing import capture

    with capture():
        ids = set()
        for _ in range(1000):
            predict({"amount": 1.0}, tenant="a")
            p = modeltel.current_prediction()
            assert p is not None
            ids.add(p.prediction_id)
    assert len(ids) == 1000


def test_batch_counts_every_row(cap: Capture) -> None:
    """batch=True counts one prediction per row and records per-row scores."""

    @modeltel.instrument(model="batch", version="1", batch=True)
    def score_all(rows: np.ndarray) -> np.ndarray:
        return rows[:, 0] / 10

    out = score_all(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    assert out.tolist() == [0.1, 0.3, 0.5]
    assert cap.counter("ml.predictions", **{"ml.model.name": "batch"}) == 3
    assert cap.histogram_count("ml.prediction.score") == 3
    assert cap.histogram_count("ml.prediction.duration") == 1


def test_disabled_decorator_returns_the_function_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """MODELTEL_DISABLED=true: the decorator hands back the undecorated function."""
    monkeypatch.setenv("MODELTEL_DISABLED", "true")

    def f(features: dict[str, float]) -> float:
        return 1.0

    assert modeltel.instrument(model="m", version="1")(f) is f


def test_disabled_at_runtime_records_nothing() -> None:
    """configure(disabled=True) after decoration: calls pass straight through."""
    from modeltel.testing import capture

    with capture(disabled=True) as c:
        assert predict({"amount": 50.0}, tenant="x") == 0.5
        assert c.spans == []


def test_model_and_version_are_required_with_a_clear_error() -> None:
    """Every prediction carries its model version: leaving it out fails at decoration, naming it
    (it used to be a TypeError from deep inside)."""
    from modeltel import ConfigurationError

    def predict(features: dict[str, float]) -> float:
        return 0.5

    with pytest.raises(ConfigurationError, match=r"needs version=$"):
        modeltel.instrument(model="m")(predict)  # type: ignore[call-overload]
    with pytest.raises(ConfigurationError, match=r"needs model= and version="):
        modeltel.instrument()(predict)  # type: ignore[call-overload]


def test_truth_table_keywords_are_typed() -> None:
    """``owner=`` and the other truth-table keywords take text, the two targets numbers; anything
    else fails at decoration naming the keyword."""
    import modeltel

    with pytest.raises(modeltel.ConfigurationError, match=r"latency_budget_ms='50ms': expected a number"):
        modeltel.instrument(model="m", version="1", latency_budget_ms="50ms")(lambda f: 0.5)
    with pytest.raises(modeltel.ConfigurationError, match=r"owner=7: expected text"):
        modeltel.instrument(model="m", version="1", owner=7)(lambda f: 0.5)
    ok = modeltel.instrument(
        model="m", version="1", owner="risk", latency_budget_ms=50, cost_per_1k_target=0.4
    )
    assert ok(lambda f: 0.5)({"x": 1.0}) == 0.5
