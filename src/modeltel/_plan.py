"""Decoration time: everything about a decorated function that does not change per call.

A :class:`Plan` is built once per function. A :class:`Bound` joins it to the current runtime
(metric series, limiter, sampling threshold) and is rebuilt only when ``configure()`` runs again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from modeltel import _names as n
from modeltel._binding import Getter
from modeltel._config import UNDECLARED_POLICIES
from modeltel._errors import ConfigurationError
from modeltel._export.runtime import Runtime
from modeltel._hashing import RECIPE
from modeltel._tenants import clean_tenant

_UNBOUND: Any = None


class Plan:
    """What ``@instrument`` / ``prediction()`` were told, compiled for the hot path."""

    def __init__(
        self,
        *,
        model: str,
        version: str,
        tenant_get: Getter,
        features_get: Getter,
        score: Callable[[Any], Any] | None = None,
        decision: Callable[[Any], Any] | None = None,
        contract: Any = None,
        on_violation: str | None = None,
        fallback: Callable[..., Any] | None = None,
        cost: float | Callable[..., float] | None = None,
        rate_limits: Any = None,
        budgets: Any = None,
        batch: bool = False,
        timeout: float | None = None,
        score_range: tuple[float, float] | None = None,
        predicted_class: Callable[[Any], Any] | None = None,
        shadow: Callable[..., Any] | None = None,
        shadow_rate: float = 0.05,
        shadow_version: str | None = None,
        columns: Sequence[str] | None = None,
        sensitive: Sequence[str] = (),
        undeclared_features: str | None = None,
        targets: Mapping[str, Any] | None = None,
    ) -> None:
        if not model or not isinstance(model, str):
            raise ConfigurationError("model= must be a non-empty string")
        if on_violation not in (None, "record", "reject", "fallback"):
            raise ConfigurationError(
                f"on_violation={on_violation!r}: expected 'record', 'reject' or 'fallback'"
            )
        if on_violation == "fallback" and fallback is None:
            raise ConfigurationError("on_violation='fallback' needs fallback=")
        if undeclared_features is not None and undeclared_features not in UNDECLARED_POLICIES:
            raise ConfigurationError(
                f"undeclared_features={undeclared_features!r}: expected 'drop', 'hash' or 'keep'"
            )
        self.model = model
        self.version = str(version)
        self.span_name = n.SPAN_NAME_PREFIX + model
        self.tenant_get = tenant_get
        self.features_get = features_get
        self.score_fn = score
        self.decision_fn = decision
        self.contract = _compile(contract)
        self.on_violation = on_violation
        self.fallback = fallback
        self.cost = cost
        # Keyword limits are checked now, at decoration time, not on the first call.
        self.rate_limits = (
            None if rate_limits is None else _limits().normalize_rate_limits(rate_limits, "rate_limits")
        )
        self.budgets = None if budgets is None else _limits().normalize_budgets(budgets, "budgets")
        self.batch = batch
        if timeout is not None and not timeout > 0:
            raise ConfigurationError(f"timeout={timeout!r}: expected seconds > 0")
        if score_range is not None and not (len(score_range) == 2 and score_range[0] <= score_range[1]):
            raise ConfigurationError(f"score_range={score_range!r}: expected (low, high) with low <= high")
        self.timeout = timeout
        self.score_range = score_range
        self.class_fn = predicted_class
        if not 0.0 <= shadow_rate <= 1.0:
            raise ConfigurationError(f"shadow_rate={shadow_rate!r}: expected a fraction from 0 to 1")
        self.shadow = shadow
        self.shadow_rate = shadow_rate
        self.shadow_version = shadow_version or f"{self.version}+shadow"
        self.columns = tuple(columns) if columns is not None else None
        contract_sensitive = self.contract.sensitive if self.contract is not None else frozenset()
        self.sensitive = frozenset(sensitive) | contract_sensitive
        self.undeclared_features = undeclared_features
        self.targets = dict(targets or {})
        self.span_attrs: dict[str, Any] = {
            n.MODEL_NAME: model,
            n.MODEL_VERSION: self.version,
            n.PAYLOAD_HASH_RECIPE: RECIPE,
        }
        if self.contract is not None:
            self.span_attrs[n.CONTRACT_VERSION] = self.contract.version
        self.span_attrs.update({f"ml.model.{k}": v for k, v in self.targets.items() if v is not None})
        self._bound: Bound | None = None
        self._bind_lock = threading.Lock()

    def bound(self, runtime: Runtime) -> Bound:
        """This plan joined to ``runtime`` (cached until the runtime changes)."""
        b = self._bound
        if b is not None and b.runtime is runtime:
            return b
        with self._bind_lock:
            b = self._bound
            if b is None or b.runtime is not runtime:
                b = self._bound = Bound(self, runtime)
            return b

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_bound"] = None
        del state["_bind_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bind_lock = threading.Lock()


def _compile(contract: Any) -> Any:
    if contract is None:
        return None
    from modeltel._contract.contract import Contract, compile_contract

    return contract if isinstance(contract, Contract) else compile_contract(contract)


class Bound:
    """A plan joined to one runtime: the per-runtime state the hot path reads."""

    def __init__(self, plan: Plan, runtime: Runtime) -> None:
        settings = runtime.settings
        self.plan = plan
        self.runtime = runtime
        self.recorder = runtime.recorder
        self.hasher = runtime.hasher
        self.tracer = runtime.tracer
        self.span_gate = runtime.span_gate
        self.lean = runtime.lean
        self.span_const = None if runtime.lean is None else runtime.lean.constant(plan.span_attrs)
        self.span_unsampled = runtime.span_unsampled
        self.otel_logger = runtime.otel_logger
        # A fallback, when given, answers invalid inputs unless on_violation says otherwise.
        default_policy = "fallback" if plan.fallback is not None else settings.on_violation
        self.violation_policy = plan.on_violation or default_policy
        rate = settings.feature_sample_rate
        # A payload is sampled when its 64-bit hash falls below rate * 2**64: deterministic, so a
        # replay of the same traffic samples the same payloads.
        self.sample_below = int(rate * 2**64) if rate < 1.0 else 2**64
        self.max_feature_bytes = settings.max_feature_bytes
        # Sampled records log only the contract's features unless the policy keeps the others;
        # None: every feature is logged (no contract, or ``keep``).
        undeclared = plan.undeclared_features or settings.undeclared_features
        contract = plan.contract
        self.declared = None if contract is None or undeclared == "keep" else frozenset(contract.fields)
        self.hash_undeclared = undeclared == "hash"
        self.cost_per_row = settings.cost_per_1k / 1000.0
        # What one row costs unless a callable ``cost=`` or ``record(cost=)`` says otherwise.
        self.unit_cost = float(plan.cost) if isinstance(plan.cost, (int, float)) else self.cost_per_row
        self.fast_check = None if plan.contract is None else plan.contract.row_check
        self.fixed_cost = not callable(plan.cost)
        # A float output needs no extraction when nothing else reads the output.
        self.plain_output = (
            plan.score_fn is None
            and plan.decision_fn is None
            and plan.class_fn is None
            and plan.timeout is None
            and plan.score_range is None
        )
        self.limiter = _limiter(plan, runtime)
        records = runtime.records
        self.records = None if records is None else records.buffer_for(plan.model, plan.version, plan.targets)
        self.records_below = (
            int(settings.prediction_records * 2**64) if settings.prediction_records < 1.0 else 2**64
        )
        self.limiter_remote = self.limiter is not None and settings.limits_backend != "memory"
        flight = runtime.recorder.flight(((n.MODEL_NAME, plan.model), (n.MODEL_VERSION, plan.version)))
        self.enter, self.leave = flight.enter, flight.leave
        self.shadow_below = int(plan.shadow_rate * 2**64) if plan.shadow_rate < 1.0 else 2**64
        self.shadow_records = (
            None
            if plan.shadow is None or records is None
            else records.buffer_for(
                plan.model, plan.shadow_version, {**plan.targets, "shadow_of": plan.version}
            )
        )
        self.cells: dict[tuple[str, str, str | None], Any] = {}
        self.record = runtime.recorder.record
        self.budget_slots: dict[str, Any] = {}

    def cell(self, tenant: str, outcome: str, cls: str | None = None) -> Any:
        """The metric series for this tenant, outcome and class (tenant and class capped)."""
        key = (tenant, outcome, cls)
        cell = self.cells.get(key)
        if cell is None:
            capped = self.runtime.tenants.metric_value(clean_tenant(tenant))
            capped_cls = None if cls is None else self.runtime.classes.metric_value(clean_tenant(cls))
            cell = self.recorder.cell(self.plan.model, self.plan.version, capped, outcome, capped_cls)
            if len(self.cells) < 10_000:
                self.cells[key] = cell
        return cell

    def budget_slot(self, tenant: str) -> Any:
        """The tenant's ``ml.budget.remaining`` series (tenant capped): set its ``value``."""
        slot = self.budget_slots.get(tenant)
        if slot is None:
            capped = self.runtime.tenants.metric_value(tenant)
            attrs = (
                (n.MODEL_NAME, self.plan.model),
                (n.MODEL_VERSION, self.plan.version),
                (n.TENANT, capped),
            )
            slot = self.recorder.gauge_slot(n.M_BUDGET_REMAINING, attrs)
            if len(self.budget_slots) < 10_000:
                self.budget_slots[tenant] = slot
        return slot


def _limits() -> Any:
    import modeltel._limits

    return modeltel._limits


def _limiter(plan: Plan, runtime: Runtime) -> Any:
    """The model's limiter: decorator keywords override ``MODELTEL_RATE_LIMITS`` / ``MODELTEL_BUDGETS``."""
    settings = runtime.settings
    if (
        plan.rate_limits is None
        and plan.budgets is None
        and not settings.rate_limits
        and not settings.budgets
    ):
        return None
    limits = _limits()
    rates = plan.rate_limits
    if rates is None:
        rates = limits.normalize_rate_limits(settings.rate_limits or None, "MODELTEL_RATE_LIMITS")
    budgets = plan.budgets
    if budgets is None:
        budgets = limits.normalize_budgets(settings.budgets or None, "MODELTEL_BUDGETS")
    if not rates and not budgets:
        return None
    return limits.Limiter(
        rates=rates,
        budgets=budgets,
        backend=settings.limits_backend,
        scope=plan.model,
        on_error=settings.limits_on_error,
        timeout_s=settings.limits_timeout_ms / 1000.0,
        replicas_hint=settings.replicas,
    )
