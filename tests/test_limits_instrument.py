"""Rate limits and budgets through the decorator: denials, fallback, reservations, telemetry."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.trace import StatusCode

import modeltel
from modeltel.testing import Capture, capture

calls: list[str] = []


def _cheap(features: dict[str, float], tenant: str) -> float:
    return -1.0


@modeltel.instrument(model="ranker", version="7", tenant="tenant", rate_limits="acme=3/hour burst 3")
def rank(features: dict[str, float], tenant: str) -> float:
    calls.append(tenant)
    return 0.5


@modeltel.instrument(
    model="ranker", version="7", tenant="tenant", rate_limits="*=2/hour burst 2", fallback=_cheap
)
def rank_with_fallback(features: dict[str, float], tenant: str) -> float:
    return 0.5


@modeltel.instrument(model="scorer", version="1", tenant="tenant", budgets="*=3/day", cost=1.0)
def score(features: dict[str, float], tenant: str) -> float:
    if features.get("explode"):
        raise RuntimeError("model failure")
    return 0.1


def test_over_the_rate_limit_raises_before_predict_runs(cap: Capture) -> None:
    """The fourth call in the hour raises RateLimited with retry_after; predict ran three times."""
    calls.clear()
    for _ in range(3):
        rank({"x": 1.0}, tenant="acme")
    with pytest.raises(modeltel.RateLimited) as info:
        rank({"x": 1.0}, tenant="acme")
    assert info.value.retry_after > 0 and info.value.tenant == "acme"
    assert calls == ["acme"] * 3
    assert cap.counter("ml.predictions", **{"ml.outcome": "rate_limited"}) == 1
    assert cap.counter("ml.predictions", **{"ml.outcome": "ok"}) == 3


def test_unlisted_tenants_are_unlimited_without_a_star_entry(cap: Capture) -> None:
    """Only acme is limited; another tenant passes however often it calls."""
    for _ in range(10):
        assert rank({"x": 1.0}, tenant="globex") == 0.5


def test_fallback_answers_over_the_limit(cap: Capture) -> None:
    """With fallback=, the cheap model answers over the limit and the outcome is fallback."""
    assert [rank_with_fallback({"x": 1.0}, tenant="beta") for _ in range(4)] == [0.5, 0.5, -1.0, -1.0]
    assert cap.counter("ml.predictions", **{"ml.outcome": "fallback"}) == 2


def test_budget_exceeded_carries_remaining_and_reset(cap: Capture) -> None:
    """A budget of 3 at cost 1 admits exactly 3 calls; the denial says what remains and when it resets."""
    for _ in range(3):
        score({"x": 1.0}, tenant="acme")
    with pytest.raises(modeltel.BudgetExceeded) as info:
        score({"x": 1.0}, tenant="acme")
    assert info.value.remaining == 0 and info.value.resets_at > 0
    assert cap.counter("ml.prediction.cost", **{"ml.tenant": "acme"}) == 3.0
    assert cap.counter("ml.predictions", **{"ml.outcome": "budget_exceeded"}) == 1


def test_predict_raising_releases_its_reservation(cap: Capture) -> None:
    """Calls that raise do not spend the budget: three failures, then three successes still fit."""
    for _ in range(3):
        with pytest.raises(RuntimeError):
            score({"explode": 1.0}, tenant="initech")
    for _ in range(3):
        score({"x": 1.0}, tenant="initech")
    with pytest.raises(modeltel.BudgetExceeded):
        score({"x": 1.0}, tenant="initech")


def test_async_predict_is_limited_exactly(cap: Capture) -> None:
    """Fifty concurrent async calls against a burst of 5 admit exactly 5."""

    @modeltel.instrument(model="async-ranker", version="1", tenant="tenant", rate_limits="*=5/hour burst 5")
    async def arank(features: dict[str, float], tenant: str) -> float:
        await asyncio.sleep(0)
        return 0.5

    async def main() -> list[object]:
        return await asyncio.gather(*(arank({"x": 1.0}, "t") for _ in range(50)), return_exceptions=True)

    results = asyncio.run(main())
    assert results.count(0.5) == 5
    assert sum(isinstance(r, modeltel.RateLimited) for r in results) == 45


def test_malformed_limit_specs_fail_at_start_up() -> None:
    """A bad env spec fails configure() naming the variable; a bad keyword fails at decoration."""
    with (
        pytest.raises(modeltel.ConfigurationError, match="MODELTEL_BUDGETS"),
        capture(budgets="acme=50/decade"),
    ):
        pass
    with pytest.raises(modeltel.ConfigurationError, match="rate_limits"):
        modeltel.instrument(model="m", version="1", rate_limits="acme=abc/s")(lambda features: 0.0)


def test_limit_decision_on_spans_and_remaining_budget_gauge(cap: Capture) -> None:
    """Spans say how the limiter decided; ml.budget.remaining tracks the tenant's budget left."""

    @modeltel.instrument(model="gauged", version="1", tenant="tenant", budgets="*=10/day", cost=2.0)
    def f(features: dict[str, float], tenant: str) -> float:
        return 0.5

    for _ in range(3):
        f({"x": 1.0}, tenant="acme")
    (point,) = cap.metric_points("ml.budget.remaining", **{"ml.tenant": "acme"})
    assert point.value == 4.0
    spans = cap.spans
    assert [s.attributes["ml.limit.decision"] for s in spans if s.attributes] == ["admitted"] * 3
    assert [s.attributes["ml.budget.remaining"] for s in spans if s.attributes] == [8.0, 6.0, 4.0]


def test_throttled_calls_leave_span_status_unset(cap: Capture) -> None:
    """Rate-limited and over-budget spans, with or without fallback=, stay UNSET (the reason is in
    ml.outcome and ml.limit.decision); predict's own exception still makes the span ERROR."""
    for options in ({"rate_limits": "*=1/hour burst 1"}, {"budgets": "*=1/day", "cost": 1.0}):
        for fallback in (None, _cheap):
            limited = modeltel.instrument(
                model="t", version="1", tenant="tenant", fallback=fallback, **options
            )
            predict = limited(lambda features, tenant: 0.5)
            assert predict({"x": 1.0}, tenant="acme") == 0.5
            if fallback is None:
                with pytest.raises((modeltel.RateLimited, modeltel.BudgetExceeded)):
                    predict({"x": 1.0}, tenant="acme")
            else:
                assert predict({"x": 1.0}, tenant="acme") == -1.0
    with pytest.raises(RuntimeError):
        score({"explode": 1.0}, tenant="acme")
    seen = {
        (s.attributes["ml.outcome"], s.attributes["ml.limit.decision"], s.status.status_code)
        for s in cap.spans
        if s.attributes is not None
    }
    assert seen == {
        ("ok", "admitted", StatusCode.UNSET),
        ("rate_limited", "rate_limited", StatusCode.UNSET),
        ("budget_exceeded", "budget_exceeded", StatusCode.UNSET),
        ("fallback", "rate_limited", StatusCode.UNSET),
        ("fallback", "budget_exceeded", StatusCode.UNSET),
        ("error", "admitted", StatusCode.ERROR),
    }
