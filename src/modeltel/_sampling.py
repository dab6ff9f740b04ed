"""Decide trace sampling before asking the SDK, so unsampled calls cost no span at all.

The SDK's ``start_span`` costs ~4 us even for a call its sampler drops (ids, sampler call, a
non-recording span, context attach). Where modeltel owns the TracerProvider it also built the
sampler, from the standard ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` variables, so it
can make the same decision first: the parent's sampled flag for parent-based samplers, and for
ratio samplers the same ``trace_id & (2**64 - 1) < bound`` test on a trace id it then hands to
the SDK through :class:`PresetIdGenerator`, so the span the SDK creates carries that very id.
Samplers it does not know (and providers the application installed) get the SDK's own path.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Mapping

from opentelemetry import trace
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
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


def sampler_from_env(
    environ: Mapping[str, str] | None = None,
) -> tuple[Sampler, Callable[[], bool] | None, PresetIdGenerator]:
    """The sampler the env asks for, a gate that predicts its decision (None: unknown sampler), and
    the id generator the TracerProvider must use for the gate to hold."""
    environ = os.environ if environ is None else environ
    name = environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    ids = PresetIdGenerator()
    if name in ("always_on", "parentbased_always_on"):
        sampler: Sampler = ALWAYS_ON if name == "always_on" else ParentBased(ALWAYS_ON)
        return sampler, _gate(name.startswith("parentbased"), _LIMIT + 1, ids), ids
    if name in ("always_off", "parentbased_always_off"):
        sampler = ALWAYS_OFF if name == "always_off" else ParentBased(ALWAYS_OFF)
        return sampler, _gate(name.startswith("parentbased"), 0, ids), ids
    if name in ("traceidratio", "parentbased_traceidratio"):
        ratio = TraceIdRatioBased(_ratio(environ))
        sampler = ratio if name == "traceidratio" else ParentBased(ratio)
        return sampler, _gate(name.startswith("parentbased"), ratio.bound, ids), ids
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


def _gate(parent_based: bool, bound: int, ids: PresetIdGenerator) -> Callable[[], bool]:
    getrandbits = random.getrandbits
    get_current_span = _current_span_getter()

    def should_start() -> bool:
        span = get_current_span()
        if span is not None and isinstance(span, trace.Span):
            parent = span.get_span_context()
            if parent.is_valid:
                if parent_based:
                    return bool(parent.trace_flags.sampled)
                return (parent.trace_id & _LIMIT) < bound
        if bound > _LIMIT:
            return True
        trace_id = getrandbits(128) or 1
        if (trace_id & _LIMIT) < bound:
            ids.preset(trace_id)
            return True
        return False

    return should_start
