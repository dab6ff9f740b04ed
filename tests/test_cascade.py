"""modeltel.cascade: escalation, budget, tier attribution and cost per tier."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from modeltel._cascade import cascade
from modeltel._errors import ConfigurationError, RateLimited
from modeltel.testing import Capture


class Tiers:
    """A cheap tier answering the input's score and an expensive tier answering 1.0; both log calls."""

    def __init__(self, fail_expensive: int = 0) -> None:
        self.cheap_calls: list[float] = []
        self.expensive_calls: list[float] = []
        self._fail_expensive = fail_expensive

    def cheap(self, x: dict[str, float], tenant: str = "acme") -> float:
        self.cheap_calls.append(x["s"])
        return x["s"]

    def expensive(self, x: dict[str, float], tenant: str = "acme") -> float:
        self.expensive_calls.append(x["s"])
        if self._fail_expensive:
            self._fail_expensive -= 1
            raise RuntimeError("expensive tier down")
        return 1.0


def _cascade(tiers: Tiers, **options: Any) -> Any:
    options.setdefault("escalate", lambda s: s > 0.5)
    return cascade(
        tiers.cheap, tiers.expensive, model="fraud", version="2", tenant="tenant", cost_cheap=0.25, **options
    )


SCORES = [0.1, 0.6, 0.9, 0.4, 0.5]


def test_expensive_runs_exactly_when_escalate_says(cap: Capture) -> None:
    """The expensive tier sees exactly the inputs whose cheap score escalate() accepted."""
    tiers = Tiers()
    predict = _cascade(tiers, cost_expensive=2.0)
    answers = [predict({"s": s}) for s in SCORES]
    assert tiers.cheap_calls == SCORES
    assert tiers.expensive_calls == [0.6, 0.9]
    assert answers == [0.1, 1.0, 1.0, 0.4, 0.5]


def test_default_escalate_is_the_uncertain_middle(cap: Capture) -> None:
    """Without escalate=, scores strictly between 0.3 and 0.7 go to the expensive tier."""
    tiers = Tiers()
    predict = cascade(tiers.cheap, tiers.expensive, model="fraud")
    for s in [0.3, 0.31, 0.5, 0.69, 0.7, 0.95]:
        predict({"s": s})
    assert tiers.expensive_calls == [0.31, 0.5, 0.69]


def test_calls_counted_by_answering_tier(cap: Capture) -> None:
    """ml.cascade.calls counts each call once, under the tier that answered."""
    predict = _cascade(Tiers(), cost_expensive=2.0)
    for s in SCORES:
        predict({"s": s})
    assert (
        cap.counter("ml.cascade.calls", **{"ml.cascade.tier": "cheap", "ml.cascade.escalate": "false"}) == 3
    )
    assert (
        cap.counter("ml.cascade.calls", **{"ml.cascade.tier": "expensive", "ml.cascade.escalate": "true"})
        == 2
    )
    assert cap.counter("ml.cascade.calls", **{"ml.model.name": "fraud", "ml.model.version": "2"}) == 5


def test_each_tier_records_its_own_cost(cap: Capture) -> None:
    """ml.prediction.cost per tier version is calls x that tier's cost."""
    predict = _cascade(Tiers(), cost_expensive=2.0)
    for s in SCORES:
        predict({"s": s})
    assert cap.counter("ml.prediction.cost", **{"ml.model.version": "2+cheap"}) == 5 * 0.25
    assert cap.counter("ml.prediction.cost", **{"ml.model.version": "2+expensive"}) == 2 * 2.0
    assert cap.counter("ml.predictions", **{"ml.model.version": "2+expensive"}) == 2


def test_budget_exhausted_keeps_the_cheap_answer(cap: Capture) -> None:
    """Once the tenant's budget cannot cover an escalation, the cheap tier answers."""
    tiers = Tiers()
    predict = _cascade(tiers, escalate=lambda s: True, budgets={"acme": "5/day"}, cost_expensive=2.0)
    answers = [predict({"s": s}, tenant="acme") for s in [0.1, 0.2, 0.3, 0.4]]
    assert tiers.expensive_calls == [0.1, 0.2]
    assert answers == [1.0, 1.0, 0.3, 0.4]
    assert cap.counter("ml.cascade.calls", **{"ml.cascade.tier": "cheap", "ml.cascade.escalate": "true"}) == 2


def test_budget_is_per_tenant(cap: Capture) -> None:
    """Another tenant's exhausted budget does not stop this tenant's escalations."""
    tiers = Tiers()
    predict = _cascade(tiers, escalate=lambda s: True, budgets="acme=2/day;*=4/day", cost_expensive=2.0)
    for tenant in ["acme", "acme", "beta", "beta", "beta"]:
        predict({"s": 0.5}, tenant=tenant)
    assert cap.counter("ml.cascade.calls", **{"ml.cascade.tier": "expensive"}) == 3


def test_failed_escalation_releases_its_reservation(cap: Capture) -> None:
    """An expensive tier that raises spends nothing: the next escalation still fits the budget."""
    tiers = Tiers(fail_expensive=1)
    predict = _cascade(tiers, escalate=lambda s: True, budgets={"acme": "2/day"}, cost_expensive=2.0)
    with pytest.raises(RuntimeError, match="expensive tier down"):
        predict({"s": 0.5})
    assert predict({"s": 0.5}) == 1.0
    assert tiers.expensive_calls == [0.5, 0.5]


def test_output_without_score_is_not_escalated(cap: Capture) -> None:
    """A cheap answer carrying no score never reaches the expensive tier or escalate()."""
    seen: list[Any] = []
    predict = cascade(lambda x: "approve", lambda x: "review", escalate=seen.append, model="fraud")
    assert predict({"s": 1.0}) == "approve"
    assert seen == []


def test_spans_carry_the_tier(cap: Capture) -> None:
    """The cascade span names the answering tier; each tier's span names its own."""
    predict = _cascade(Tiers(), cost_expensive=2.0)
    predict({"s": 0.9})
    by_name = {(s.name, s.attributes["ml.model.version"]): s for s in cap.spans}
    assert by_name["cascade fraud", "2"].attributes["ml.cascade.tier"] == "expensive"
    assert by_name["cascade fraud", "2"].attributes["ml.cascade.escalate"] == "true"
    assert by_name["predict fraud", "2+cheap"].attributes["ml.cascade.tier"] == "cheap"
    assert by_name["predict fraud", "2+expensive"].attributes["ml.cascade.tier"] == "expensive"
    parent = by_name["cascade fraud", "2"].context.span_id
    assert by_name["predict fraud", "2+expensive"].parent.span_id == parent


def test_budget_without_expensive_cost_is_refused() -> None:
    """budgets= without cost_expensive= fails at construction, naming the missing argument."""
    tiers = Tiers()
    with pytest.raises(ConfigurationError, match="cost_expensive"):
        cascade(tiers.cheap, tiers.expensive, model="fraud", budgets={"acme": "5/day"})


def test_cascade_span_status_unset_when_throttled_error_when_a_tier_fails(cap: Capture) -> None:
    """A tier refused by its rate limit leaves the cascade span UNSET; a failing tier makes it ERROR."""
    predict = _cascade(Tiers(fail_expensive=1), cost_expensive=2.0, rate_limits="acme=1/hour burst 1")
    with pytest.raises(RuntimeError, match="expensive tier down"):
        predict({"s": 0.9}, tenant="acme")  # the cheap tier answers, the expensive one raises
    with pytest.raises(RateLimited):
        predict({"s": 0.1}, tenant="acme")  # the cheap tier's second call this hour
    cascades = [s for s in cap.spans if s.name == "cascade fraud"]
    assert [(s.status.status_code, s.status.description) for s in cascades] == [
        (StatusCode.ERROR, "RuntimeError"),
        (StatusCode.UNSET, None),
    ]
