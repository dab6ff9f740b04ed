"""Decide trace sampling before asking the SDK, so unsampled calls cost no span at all.

The SDK's ``start_span`` costs ~4 us even for a call its sampler drops (ids, sampler call, a
non-recording span, context attach). Where modeltel owns the TracerProvider it also built the
sampler, from the standard ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` variables, so it
can make the same decision first: the parent's sampled flag for parent-based samplers, and for
ratio samplers the same ``trace_id & (2**64 - 1) < bound`` test on a trace id it then hands to
the SDK through :class:`PresetIdGenerator`, so the span the SDK creates carries that very id.
Where the application installed the TracerProvider, ``_app_sdk`` reads its sampler and puts a
:class:`PresetOverIdGenerator` on modeltel's tracer to do the same. Samplers it does not know get
the SDK's own path.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from modeltel._errors import ConfigurationError

_LIMIT = (1 << 64) - 1


class PresetIdGenerator(RandomIdGenerator):
    """Random ids, except the next trace id on this thread when :meth:`preset` chose it."""

    def __init__(self) -> None:
        self._local = threading.local()

    def preset(self, trace_id: int) -> None:
        self._local.next = trace_id

    def generate_trace_id(self) -> int:
        preset: int | None = getattr(self._local, "next", None)
        if preset is None:
            return super().generate_trace_id()
        self._local.next = None
        return preset


class PresetOverIdGenerator(PresetIdGenerator):
    """A :class:`PresetIdGenerator` over the application's generator: its span ids, and its trace
    ids where modeltel chose none (its trace ids must be uniformly random, as the SDK's are)."""

    def __init__(self, inner: IdGenerator) -> None:
        super().__init__()
        self.inner = inner
        self.generate_span_id = inner.generate_span_id  # type: ignore[method-assign]

    def generate_trace_id(self) -> int:
        preset: int | None = getattr(self._local, "next", None)
        if preset is None:
            return self.inner.generate_trace_id()
        self._local.next = None
        return preset


def sampler_from_env(
    environ: Mapping[str, str] | None = None,
) -> tuple[Sampler, Gate | None, PresetIdGenerator]:
    """The sampler the env asks for, a gate that predicts its decision (None: unknown sampler), and
    the id generator the TracerProvider must use for the gate to hold."""
    environ = os.environ if environ is None else environ
    name = environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    ids = PresetIdGenerator()
    if name in ("always_on", "parentbased_always_on"):
        sampler: Sampler = ALWAYS_ON if name == "always_on" else ParentBased(ALWAYS_ON)
        return sampler, gate_for(name.startswith("parentbased"), _LIMIT + 1, ids), ids
    if name in ("always_off", "parentbased_always_off"):
        sampler = ALWAYS_OFF if name == "always_off" else ParentBased(ALWAYS_OFF)
        return sampler, gate_for(name.startswith("parentbased"), 0, ids), ids
    if name in ("traceidratio", "parentbased_traceidratio"):
        ratio = TraceIdRatioBased(_ratio(environ))
        sampler = ratio if name == "traceidratio" else ParentBased(ratio)
        return sampler, gate_for(name.startswith("parentbased"), ratio.bound, ids), ids
    from opentelemetry.sdk.trace.sampling import _get_from_env_or_default

    return _get_from_env_or_default(), None, ids


def _ratio(environ: Mapping[str, str]) -> float:
    raw = environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0")
    try:
        rate = float(raw)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise ConfigurationError(f"OTEL_TRACES_SAMPLER_ARG={raw!r} is invalid: expected a number from 0 to 1")
    return rate


def _current_span_getter() -> Callable[[], trace.Span | None]:
    """The current span, or None, in two C calls when the standard contextvars context is in use.

    ``trace.get_current_span`` walks four Python frames to the same ContextVar and ends in an ABC
    ``isinstance``; the gate runs on every prediction. Anything unexpected (another runtime
    context, a changed private layout) keeps the API function.
    """
    from opentelemetry import context
    from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
    from opentelemetry.trace.propagation import _SPAN_KEY

    runtime = getattr(context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    if type(runtime) is not ContextVarsRuntimeContext or var is None:
        return trace.get_current_span
    get_context = var.get

    def current_span() -> trace.Span | None:
        return get_context().get(_SPAN_KEY)  # type: ignore[no-any-return]

    return current_span


@dataclass(frozen=True)
class Gate:
    """``admit()``: whether the sampler keeps this call; ``unsampled()`` where it does not.
    ``parent_based`` and ``bound`` are the rule ``admit`` applies (see :func:`gate_for`)."""

    admit: Callable[[], bool]
    unsampled: Callable[[], object]
    parent_based: bool
    bound: int


def _no_parent() -> object:
    return None


class _DroppedSpan(trace.NonRecordingSpan):
    """The span of a call the gate dropped: non-recording and unsampled, like the SDK's for such a
    call, with ids of its own drawn only when something asks (a span or log record inside it).
    Made by ``object.__new__``: there is nothing to initialise."""

    _context: trace.SpanContext | None = None  # type: ignore[assignment]
    bound = 0  # the sampler's bound: the trace id drawn is one it rejects

    def get_span_context(self) -> trace.SpanContext:
        found = self._context
        if found is None:
            trace_id = random.getrandbits(128)
            while (trace_id & _LIMIT) < self.bound or not trace_id:
                trace_id = random.getrandbits(128)
            span_id = random.getrandbits(64) or 1
            found = self._context = trace.SpanContext(trace_id, span_id, False, _UNSAMPLED)
        return found


_UNSAMPLED = trace.TraceFlags(trace.TraceFlags.DEFAULT)


def unsampled_parent(bound: int) -> Callable[[], object]:
    """Makes an unsampled span current where the gate dropped a root call, so the application's
    spans inside it stay unsampled children (as under the SDK's non-recording span) instead of
    roots its sampler decides on afresh; returns the token for ``context.detach``, or None where a
    valid parent already decides for them. About 0.6 us with its detach when the context is empty
    (a root call's usual case: a ContextVar ``set``), ``context.attach`` otherwise.
    """
    from opentelemetry import context
    from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
    from opentelemetry.trace.propagation import _SPAN_KEY

    if bound > _LIMIT:
        return _no_parent  # the gate keeps every root
    dropped = type("DroppedSpan", (_DroppedSpan,), {"bound": bound})
    runtime = getattr(context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    fast = type(runtime) is ContextVarsRuntimeContext and var is not None
    get_context = var.get if fast and var is not None else context.get_current
    new_context, new = context.Context, object.__new__  # __new__: its __init__ has nothing to do

    def attach() -> object:
        current = get_context()
        parent: trace.Span | None = current.get(_SPAN_KEY)  # type: ignore[assignment]
        if parent is not None and parent.get_span_context().is_valid:
            return None
        if fast and not current:
            return var.set(new_context({_SPAN_KEY: new(dropped)}))  # type: ignore[union-attr]
        return context.attach(trace.set_span_in_context(new(dropped), current))

    return attach


def decide(
    found: object, parent_based: bool, bound: int, getrandbits: Callable[[int], int] = random.getrandbits
) -> tuple[int, trace.SpanContext | None] | None:
    """The sampler's decision for a call whose current span is ``found`` (or None): None where it
    drops the call, else ``(trace_id, parent)``. Under a valid parent, its trace id and itself
    (parent-based samplers follow its sampled flag, others test its trace id); for a root, a
    fresh trace id the sampler keeps (``trace_id & (2**64 - 1) < bound``), or 0 where it keeps
    every root and none was drawn. The one rule both the SDK path's gate and lean spans apply."""
    if found is not None and isinstance(found, trace.Span):
        parent = found.get_span_context()
        if parent.is_valid:
            keep = parent.trace_flags.sampled if parent_based else (parent.trace_id & _LIMIT) < bound
            return (parent.trace_id, parent) if keep else None
    if bound > _LIMIT:
        return 0, None
    trace_id = getrandbits(128) or 1
    return (trace_id, None) if (trace_id & _LIMIT) < bound else None


def gate_for(parent_based: bool, bound: int, ids: PresetIdGenerator) -> Gate:
    """The gate of a sampler: ``admit()`` is True when it would keep the call (see :func:`decide`),
    and presets on ``ids`` the root trace id it drew, so the SDK's span carries that very id."""
    get_current_span = _current_span_getter()

    def should_start() -> bool:
        kept = decide(get_current_span(), parent_based, bound)
        if kept is None:
            return False
        trace_id, parent = kept
        if parent is None and trace_id:
            ids.preset(trace_id)
        return True

    return Gate(should_start, unsampled_parent(bound), parent_based, bound)
