"""The public entry points: ``@instrument`` (sync, async, methods, batch) and ``prediction()``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from time import perf_counter
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

from opentelemetry import context as otel_context

from modeltel import _names as n
from modeltel import _pipeline as stage
from modeltel._binding import argument_getter, features_getter
from modeltel._config import load_settings
from modeltel._export.runtime import Runtime, _state, get_runtime
from modeltel._internal import report_internal_error, strict
from modeltel._plan import Bound, Plan
from modeltel._prediction import Prediction

F = TypeVar("F", bound=Callable[..., Any])

_TARGET_KEYS = n.TRUTH_KEYS


@overload
def instrument(fn: F, /) -> F: ...
@overload
def instrument(
    fn: None = None,
    /,
    *,
    model: str,
    version: str,
    tenant: str | Callable[..., Any] | None = None,
    features: str | Callable[..., Any] | None = None,
    score: Callable[[Any], Any] | None = None,
    decision: Callable[[Any], Any] | None = None,
    contract: Any = None,
    on_violation: str | None = None,
    fallback: Callable[..., Any] | None = None,
    cost: float | Callable[..., float] | None = None,
    rate_limits: Any = None,
    budgets: Any = None,
    batch: bool = False,
    columns: Sequence[str] | None = None,
    timeout: float | None = None,
    score_range: tuple[float, float] | None = None,
    predicted_class: Callable[[Any], Any] | None = None,
    shadow: Callable[..., Any] | None = None,
    shadow_rate: float = 0.05,
    shadow_version: str | None = None,
    sensitive: Sequence[str] = (),
    undeclared_features: str | None = None,
    owner: str | None = None,
    purpose: str | None = None,
    metric: str | None = None,
    label_source: str | None = None,
    label_delay: str | None = None,
    latency_budget_ms: float | None = None,
    cost_per_1k_target: float | None = None,
) -> Callable[[F], F]: ...
def instrument(fn: Any = None, /, **options: Any) -> Any:
    """Instrument a predict function: contract, hash, sampling, limits, spans, metrics, logs.

    ``tenant`` and ``features`` name the arguments that carry them (or are callables on the
    call's arguments); features default to the first positional argument after ``self``.
    With a ``contract``, ``undeclared_features`` (``"drop"``, ``"hash"`` or ``"keep"``; default
    ``MODELTEL_UNDECLARED_FEATURES``, else ``"drop"``) says what sampled feature records log of
    features the contract does not declare.

    The model's truth table, which ``modeltel inventory`` lists and checks: ``owner`` (a team),
    ``purpose`` (the decision it serves), ``metric`` (its primary quality metric, e.g.
    ``"roc_auc"``), ``label_source`` (where outcomes come from), ``label_delay`` (how long they
    take, e.g. ``"30d"``), ``latency_budget_ms`` (p95 target) and ``cost_per_1k_target``. They
    travel as ``ml.model.<key>`` attributes on spans and prediction records.

    >>> import modeltel
    >>> @modeltel.instrument(model="fraud", version="3.2.0", tenant="tenant")
    ... def predict(features: dict, tenant: str) -> float:
    ...     return 0.12
    >>> predict({"amount": 12.5}, tenant="acme")
    0.12
    """
    if fn is not None:
        raise TypeError("use @modeltel.instrument(model=..., version=...) with arguments")

    def decorate(func: F) -> F:
        if load_settings().disabled:
            return func  # disabled means free: the function itself, untouched
        plan = _plan_for(func, options)
        if inspect.iscoroutinefunction(func):
            return _async_wrapper(func, plan)  # type: ignore[return-value]
        return _sync_wrapper(func, plan)  # type: ignore[return-value]

    return decorate


def _plan_for(func: Callable[..., Any], options: dict[str, Any]) -> Plan:
    opts = dict(options)
    # What instrument_model read from a registry (an MLflow run id): ml.model.* attributes too.
    extra_targets = opts.pop("_extra_targets", {})
    unknown = sorted(k for k in opts if k not in _PLAN_KEYS and k not in _TARGET_KEYS)
    if unknown:
        from modeltel._errors import ConfigurationError

        raise ConfigurationError(f"instrument() got unknown argument(s): {', '.join(unknown)}")
    targets = {**{k: _target(k, opts.pop(k)) for k in _TARGET_KEYS if k in opts}, **extra_targets}
    tenant = opts.pop("tenant", None)
    features = opts.pop("features", None)
    missing = [key for key in ("model", "version") if key not in opts]
    if missing:
        from modeltel._errors import ConfigurationError

        # Every prediction carries its model version: without one, nothing can be compared later.
        raise ConfigurationError(f"instrument() needs {' and '.join(k + '=' for k in missing)}")
    return Plan(
        tenant_get=argument_getter(func, tenant, "tenant"),
        features_get=features_getter(func, features),
        targets=targets,
        **opts,
    )


_NUMERIC_TARGETS = frozenset({"latency_budget_ms", "cost_per_1k_target"})


def _target(key: str, value: Any) -> Any:
    """A truth-table value as declared: a number for the two targets, text for the rest."""
    numeric = key in _NUMERIC_TARGETS
    if numeric:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if value is not None and not ok:
        from modeltel._errors import ConfigurationError

        expected = "a number" if numeric else "text (a str)"
        raise ConfigurationError(f"instrument(): {key}={value!r}: expected {expected}")
    return value


_PLAN_KEYS = frozenset(
    {
        "model", "version", "tenant", "features", "score", "decision", "contract", "on_violation", "fallback",
        "cost", "rate_limits", "budgets", "batch", "columns", "sensitive", "timeout", "score_range",
        "predicted_class", "shadow", "shadow_rate", "shadow_version", "undeclared_features",
    }
)  # fmt: skip


def _bind(plan: Plan, rt: Runtime) -> Bound | None:
    """The plan joined to the runtime; None (predict runs bare) if that fails: promise 1."""
    b = plan._bound
    if b is not None and b.runtime is rt:
        return b
    try:
        return plan.bound(rt)
    except Exception as exc:
        report_internal_error("bind", exc)
        if strict():
            raise
        return None


def _unresolved(exc: Exception) -> tuple[Any, Any]:
    """A ``tenant=`` / ``features=`` getter raised: record it, and predict runs with neither."""
    report_internal_error("resolve.arguments", exc)
    if strict():
        raise exc
    return None, None


def _sync_wrapper(func: Callable[..., Any], plan: Plan) -> Callable[..., Any]:
    prepare, start_span, succeed, fail = stage.prepare, stage.start_span, stage.succeed, stage.fail
    get_tenant, get_features = plan.tenant_get, plan.features_get

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        rt = _state.runtime or get_runtime()
        b = plan._bound
        if b is None or b.runtime is not rt:
            b = None if rt.settings.disabled else _bind(plan, rt)
            if b is None:
                return func(*args, **kwargs)
        try:
            tenant, features = get_tenant(args, kwargs), get_features(args, kwargs)
        except Exception as exc:
            tenant, features = _unresolved(exc)
        p = prepare(b, tenant, features)
        if p.route:  # not PRIMARY: a rejection or the fallback
            if p.route == stage.REJECT:
                stage.reject(b, p)
                raise p.rejection  # type: ignore[misc]
            target = plan.fallback
        else:
            target = func
        token = start_span(b, p)
        t0 = perf_counter()
        try:
            out = target(*args, **kwargs)  # type: ignore[misc]
        except BaseException as exc:
            fail(b, p, exc, perf_counter() - t0)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
        succeed(b, p, out, perf_counter() - t0)
        if plan.shadow is not None:
            stage.shadow(b, p, args, kwargs)
        return out

    wrapper.__modeltel_plan__ = plan  # type: ignore[attr-defined]
    return wrapper


def _async_wrapper(func: Callable[..., Any], plan: Plan) -> Callable[..., Any]:
    prepare, start_span, succeed, fail = stage.prepare, stage.start_span, stage.succeed, stage.fail
    get_tenant, get_features = plan.tenant_get, plan.features_get

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        rt = _state.runtime or get_runtime()
        b = plan._bound
        if b is None or b.runtime is not rt:
            b = None if rt.settings.disabled else _bind(plan, rt)
            if b is None:
                return await func(*args, **kwargs)
        try:
            tenant, features = get_tenant(args, kwargs), get_features(args, kwargs)
        except Exception as exc:
            tenant, features = _unresolved(exc)
        if b.limiter_remote:
            p = await stage.prepare_async(b, tenant, features)
        else:
            p = prepare(b, tenant, features)
        if p.route:  # not PRIMARY: a rejection or the fallback
            if p.route == stage.REJECT:
                stage.reject(b, p)
                raise p.rejection  # type: ignore[misc]
            target = plan.fallback
        else:
            target = func
        token = start_span(b, p)
        t0 = perf_counter()
        try:
            out = target(*args, **kwargs)  # type: ignore[misc]
            if inspect.isawaitable(out):
                out = await out
        except BaseException as exc:
            fail(b, p, exc, perf_counter() - t0)
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
        succeed(b, p, out, perf_counter() - t0)
        if plan.shadow is not None:
            stage.shadow(b, p, args, kwargs)
        return out

    wrapper.__modeltel_plan__ = plan  # type: ignore[attr-defined]
    return wrapper


_plans: dict[tuple[Any, ...], Plan] = {}


def _context_plan(model: str, version: str, contract: Any, options: dict[str, Any]) -> Plan:
    key = (model, version, id(contract), tuple(sorted((k, id(v)) for k, v in options.items())))
    plan = _plans.get(key)
    if plan is None:
        none = argument_getter(lambda: None, None, "tenant")
        plan = Plan(
            model=model, version=version, contract=contract, tenant_get=none, features_get=none, **options
        )
        if len(_plans) < 1024:
            _plans[key] = plan
    return plan


class prediction:
    """Instrument a block of code that makes one prediction (sync ``with`` or ``async with``).

    >>> import modeltel
    >>> with modeltel.prediction(model="fraud", version="3.2.0", tenant="acme", features={"x": 1.0}) as p:
    ...     p.record(score=0.93, decision="review")
    >>> len(p.prediction_id)
    32
    """

    __slots__ = ("_b", "_features", "_p", "_t0", "_tenant", "_token")

    def __init__(
        self,
        *,
        model: str,
        version: str = "",
        tenant: Any = None,
        features: Any = None,
        contract: Any = None,
        **options: Any,
    ) -> None:
        rt = _state.runtime or get_runtime()
        plan = None if rt.settings.disabled else _context_plan(model, version, contract, options)
        self._b: Bound | None = None if plan is None else _bind(plan, rt)
        self._tenant = tenant
        self._features = features
        self._p: Prediction | None = None
        self._token: Any = None
        self._t0 = 0.0

    def __enter__(self) -> Prediction:
        b = self._b
        if b is None:
            return _inert_prediction()
        p = stage.prepare(b, self._tenant, self._features)
        return self._enter(b, p)

    async def __aenter__(self) -> Prediction:
        b = self._b
        if b is None:
            return _inert_prediction()
        p = await stage.prepare_async(b, self._tenant, self._features)
        return self._enter(b, p)

    def _enter(self, b: Bound, p: Prediction) -> Prediction:
        if p.route != stage.PRIMARY:
            stage.reject(b, p)
            raise p.rejection  # type: ignore[misc]
        self._p = p
        self._token = stage.start_span(b, p)
        self._t0 = perf_counter()
        return p

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        b, p = self._b, self._p
        if b is None or p is None:
            return False
        duration = perf_counter() - self._t0
        try:
            if exc is not None:
                stage.fail(b, p, exc, duration)
            else:
                stage.succeed(b, p, None, duration)
        finally:
            stage.end_span(self._token)
        return False

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        return self.__exit__(exc_type, exc, tb)


def _inert_prediction() -> Prediction:
    from modeltel._ids import new_prediction_id

    rt = get_runtime()
    plan = _context_plan("disabled", "", None, {})
    p = Prediction(plan.bound(rt))
    p.prediction_id = new_prediction_id()
    return p
