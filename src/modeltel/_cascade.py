"""``modeltel.cascade``: the cheap model first, the expensive one only where it pays.

Each tier is an ordinary ``@modeltel.instrument``-ed function of the same model, told apart by
its version (``"<version>+cheap"`` and ``"<version>+expensive"``, or ``"cheap"`` and
``"expensive"`` without a version), so every per-prediction signal (latency, errors, scores,
``ml.prediction.cost``) is there per tier with nothing re-implemented. On top of that the cascade
records, per call, which tier answered and whether ``escalate`` asked for the expensive one:

* the counter ``ml.cascade.calls`` (``ml.model.name``, ``ml.model.version``, ``ml.cascade.tier``,
  ``ml.cascade.escalate``); escalation rate = ``escalate="true"`` / all, and the calls the budget
  kept on the cheap tier are ``escalate="true", tier="cheap"``;
* a parent span ``cascade {model}`` over the tier spans, and ``ml.cascade.tier`` on each span.

The tenant's budget (``budgets=``, like ``@instrument``'s) caps what the expensive tier spends:
each escalation reserves ``cost_expensive`` first and, when the budget says no, the cheap answer
stands. The cheap tier always runs and is never refused by the cascade's budget.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Final

from opentelemetry import trace

from modeltel import _names as n
from modeltel._binding import argument_getter
from modeltel._errors import BudgetExceeded, ConfigurationError, RateLimited
from modeltel._export.runtime import _state, get_runtime
from modeltel._instrument import instrument
from modeltel._internal import handle_internal_errors
from modeltel._limits import Limiter, normalize_budgets
from modeltel._scores import score_of
from modeltel._tenants import clean_tenant

__all__ = ["CASCADE_ESCALATE", "CASCADE_TIER", "CHEAP", "EXPENSIVE", "M_CASCADE_CALLS", "Cascade", "cascade"]

M_CASCADE_CALLS: Final = n.M_CASCADE_CALLS
CASCADE_TIER: Final = n.CASCADE_TIER
CASCADE_ESCALATE: Final = n.CASCADE_ESCALATE
CHEAP: Final = "cheap"
EXPENSIVE: Final = "expensive"


def uncertain(score: float) -> bool:
    """The default ``escalate``: the cheap model's score is in the undecided middle, (0.3, 0.7)."""
    return 0.3 < score < 0.7


def tier_version(version: str, tier: str) -> str:
    """The ``ml.model.version`` a tier records under."""
    return f"{version}+{tier}" if version else tier


def _tagged(fn: Callable[..., Any], tier: str) -> Callable[..., Any]:
    """``fn`` marking the running prediction's span (the tier's own) with its tier."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        trace.get_current_span().set_attribute(CASCADE_TIER, tier)
        return fn(*args, **kwargs)

    return call


class Cascade:
    """A callable running ``cheap``, then ``expensive`` when ``escalate(score)`` and the budget agree."""

    def __init__(
        self,
        cheap: Callable[..., Any],
        expensive: Callable[..., Any],
        escalate: Callable[[float], bool],
        *,
        model: str,
        version: str = "",
        tenant: str | Callable[..., Any] | None = None,
        budgets: str | Mapping[str, Any] | None = None,
        cost_cheap: float | None = None,
        cost_expensive: float | None = None,
        score: Callable[[Any], Any] | None = None,
        limits_backend: str = "memory",
        **options: Any,
    ) -> None:
        if inspect.iscoroutinefunction(cheap) or inspect.iscoroutinefunction(expensive):
            raise ConfigurationError("cascade(): cheap and expensive must be plain (not async) functions")
        if budgets is not None and not cost_expensive:
            raise ConfigurationError("cascade(): budgets= needs cost_expensive= (what an escalation spends)")
        common = {"model": model, "tenant": tenant, "score": score, **options}
        self._cheap = instrument(version=tier_version(version, CHEAP), cost=cost_cheap, **common)(
            _tagged(cheap, CHEAP)
        )
        self._expensive = instrument(version=tier_version(version, EXPENSIVE), cost=cost_expensive, **common)(
            _tagged(expensive, EXPENSIVE)
        )
        self._escalate = escalate
        self._score = score
        self._tenant = argument_getter(cheap, tenant, "tenant")
        self._cost_expensive = float(cost_expensive or 0.0)
        budget_rules = normalize_budgets(budgets, "budgets")
        self._limiter = (
            Limiter(rates={}, budgets=budget_rules, backend=limits_backend, scope=f"{model}:cascade")
            if budget_rules
            else None
        )
        self._span_name = f"cascade {model}"
        base = ((n.MODEL_NAME, model), (n.MODEL_VERSION, str(version)))
        self._attrs = {
            (tier, wanted): (*base, (CASCADE_TIER, tier), (CASCADE_ESCALATE, "true" if wanted else "false"))
            for tier in (CHEAP, EXPENSIVE)
            for wanted in (False, True)
        }
        functools.update_wrapper(self, cheap)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Answer one call; the exception of either tier reaches the caller unchanged."""
        rt = _state.runtime or get_runtime()
        if rt.settings.disabled:
            return self._run(args, kwargs)[0]
        # The tier's own span records the exception (bounded, sensitive values redacted); the
        # SDK's default would copy its full text here.
        with rt.tracer.start_as_current_span(
            self._span_name,
            attributes=dict(self._attrs[CHEAP, False][:2]),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                out, tier, wanted = self._run(args, kwargs)
            except BaseException as exc:
                _mark_failed(span, exc)
                raise
            attrs = self._attrs[tier, wanted]
            trace.get_current_span().set_attributes(dict(attrs[2:]))
            with handle_internal_errors("cascade.record"):
                rt.recorder.add(M_CASCADE_CALLS, 1, attrs)
        return out

    def _run(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, str, bool]:
        out = self._cheap(*args, **kwargs)
        raw = out if self._score is None else self._score(out)
        score = score_of(raw)
        wanted = score is not None and bool(self._escalate(score))
        if not wanted:
            return out, CHEAP, False
        if self._limiter is None:
            return self._expensive(*args, **kwargs), EXPENSIVE, True
        admission = self._limiter.admit(clean_tenant(self._tenant(args, kwargs)), self._cost_expensive)
        if not admission.allowed:
            return out, CHEAP, True
        try:
            answer = self._expensive(*args, **kwargs)
        except BaseException:
            self._limiter.release(admission)
            raise
        self._limiter.settle(admission, self._cost_expensive)
        return answer, EXPENSIVE, True


def _mark_failed(span: trace.Span, exc: BaseException) -> None:
    """Status ERROR, with the exception's type only; a tenant's limit or budget leaves it UNSET."""
    if not isinstance(exc, (RateLimited, BudgetExceeded)):
        with handle_internal_errors("cascade.status"):
            span.set_status(trace.StatusCode.ERROR, type(exc).__name__)


def cascade(
    cheap: Callable[..., Any],
    expensive: Callable[..., Any],
    escalate: Callable[[float], bool] = uncertain,
    **options: Any,
) -> Cascade:
    """Call ``cheap`` first and ``expensive`` only when ``escalate(score)`` says so and the budget allows.

    Keyword options: ``model=`` (required), ``version=``, ``tenant=`` (argument name or callable,
    as for ``@instrument``), ``budgets=`` (per-tenant caps on the expensive tier's spend, e.g.
    ``"acme=50/day;*=5/day"``), ``cost_cheap=`` / ``cost_expensive=`` (cost per call of each
    tier), ``score=`` (extracts the score from the cheap tier's output), ``limits_backend=``
    (``"memory"`` or a Redis URL shared by replicas); anything else goes to ``@instrument`` for
    both tiers. A cheap output without a score is never escalated.

    >>> import modeltel
    >>> predict = modeltel.cascade(lambda x: 0.5, lambda x: 0.9, model="fraud", version="3.2.0")
    >>> predict({"amount": 12.0})
    0.9
    """
    return Cascade(cheap, expensive, escalate, **options)
