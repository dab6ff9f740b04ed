"""What modeltel reads from the providers an application installed: the one module that relies on
OpenTelemetry SDK internals (present from SDK 1.39 to the newest tested).

Metrics: the SDK has no public entry point for pre-aggregated histograms, so modeltel mirrors the
application's pipeline instead of recording through it: for each ``PeriodicExportingMetricReader``
of the application's MeterProvider, a reader of modeltel's own with the same exporter, interval
and timeout (hence temporality), exporting modeltel's exact local aggregates under the
application's resource. That needs the provider's readers and each reader's exporter and timing.

Traces: modeltel predicts the application's sampler as it does its own (see ``_sampling``) when
the sampler is one of the SDK's standard set and the provider's trace ids are the SDK's random
ones. That needs the tracer's sampler and id generator, and ParentBased's delegates.

Whatever is unexpected (another SDK, a pull reader such as Prometheus's, a View that may select
modeltel's instruments, a temporality or aggregation the local aggregates cannot produce, a
layout this SDK version changed) raises :class:`Unsupported` with the reason, or returns None:
the caller then keeps the per-record API path (metrics) or the SDK's own sampling (traces).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch
from typing import Any

from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import DefaultAggregation, ExplicitBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Tracer
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from modeltel import _names as n
from modeltel._sampling import Gate, PresetOverIdGenerator, gate_for

_LIMIT = (1 << 64) - 1
_CUMULATIVE = AggregationTemporality.CUMULATIVE


class Unsupported(Exception):
    """Why the application's MeterProvider cannot carry modeltel's local aggregates."""


@dataclass(frozen=True)
class MirroredReader:
    """What modeltel's reader copies from one of the application's periodic readers."""

    exporter: MetricExporter
    interval_ms: float
    timeout_ms: float
    delta: bool  # the exporter asks for delta counters and histograms


@dataclass(frozen=True)
class AppMetricPipeline:
    resource: Resource
    readers: list[MirroredReader]


def app_metric_pipeline(provider: Any) -> AppMetricPipeline:
    """The application's MeterProvider's resource and periodic readers, or :class:`Unsupported`."""
    if not isinstance(provider, MeterProvider):
        raise Unsupported(f"its MeterProvider is a {type(provider).__name__}, not the OpenTelemetry SDK's")
    config = getattr(provider, "_sdk_config", None)
    resource = getattr(config, "resource", None)
    # SDK 1.39 keeps the readers in the configuration; newer ones on the provider.
    readers = getattr(provider, "_metric_readers", None) or getattr(config, "metric_readers", None)
    if not isinstance(resource, Resource) or readers is None:
        raise Unsupported("this OpenTelemetry SDK keeps its metric readers where modeltel does not look")
    for view in getattr(config, "views", None) or ():
        if _may_select_ours(view):
            raise Unsupported("one of its Views may select modeltel's metrics, and Views see measurements")
    mirrored = [_mirrored(reader) for reader in readers]
    if len(mirrored) > 1 and any(r.delta for r in mirrored):
        raise Unsupported("it has several metric readers, one with delta temporality")
    return AppMetricPipeline(resource, mirrored)


def _may_select_ours(view: Any) -> bool:
    """Whether ``view`` could apply to one of modeltel's instruments (meter ``modeltel``)."""
    meter = getattr(view, "_meter_name", None)
    pattern = getattr(view, "_instrument_name", None)
    if meter not in (None, "modeltel"):
        return False
    return pattern is None or any(fnmatch(name, pattern) for name in _OUR_METRICS)


_OUR_METRICS = tuple(v for k, v in vars(n).items() if k.startswith("M_") and isinstance(v, str))


def _mirrored(reader: Any) -> MirroredReader:
    if not isinstance(reader, PeriodicExportingMetricReader):
        raise Unsupported(f"its {type(reader).__name__} collects on demand and cannot be mirrored")
    exporter = getattr(reader, "_exporter", None)
    interval = getattr(reader, "_export_interval_millis", None)
    timeout = getattr(reader, "_export_timeout_millis", None)
    if not isinstance(exporter, MetricExporter) or interval is None or timeout is None:
        raise Unsupported("this OpenTelemetry SDK keeps a reader's exporter where modeltel does not look")
    return MirroredReader(exporter, float(interval), float(timeout), _delta(exporter))


def _delta(exporter: MetricExporter) -> bool:
    """Whether ``exporter`` wants delta counters and histograms; :class:`Unsupported` where its
    preferences ask for what the local aggregates do not produce."""
    temporality = getattr(exporter, "_preferred_temporality", None) or {}
    aggregation = getattr(exporter, "_preferred_aggregation", None) or {}
    name = type(exporter).__name__
    for kind in (Counter, UpDownCounter, Histogram):
        if not _default(aggregation.get(kind)):
            raise Unsupported(f"{name} asks for a {kind.__name__} aggregation other than the default")
    counters, histograms = temporality.get(Counter, _CUMULATIVE), temporality.get(Histogram, _CUMULATIVE)
    if counters != histograms or temporality.get(UpDownCounter, _CUMULATIVE) != _CUMULATIVE:
        raise Unsupported(f"{name} asks for a mix of temporalities modeltel's aggregates do not produce")
    return bool(counters == AggregationTemporality.DELTA)


def _default(aggregation: Any) -> bool:
    """Whether ``aggregation`` aggregates as modeltel's local aggregates do: the default, or
    (OTLP exporters' choice) explicit buckets at the instrument's own bounds, with min and max."""
    if aggregation is None or isinstance(aggregation, DefaultAggregation):
        return True
    return (
        type(aggregation) is ExplicitBucketHistogramAggregation
        and getattr(aggregation, "_boundaries", ()) is None
        and getattr(aggregation, "_record_min_max", False) is True
    )


def sampling_gate(tracer: Any) -> Gate | None:
    """A gate predicting the decision of the application's sampler for spans of ``tracer`` (the
    SDK tracer modeltel got from the application's provider), or None where it cannot be
    predicted. The tracer then takes its root trace ids from the gate's preset."""
    if not isinstance(tracer, Tracer):
        return None
    ids: Any = getattr(tracer, "id_generator", None)
    if isinstance(ids, PresetOverIdGenerator):  # configured before: the SDK caches its tracers
        ids = ids.inner
    # Ratio samplers test the trace id: the gate draws it, so the ids must be uniformly random.
    if getattr(type(ids), "generate_trace_id", None) is not RandomIdGenerator.generate_trace_id:
        return None
    rule = _rule(getattr(tracer, "sampler", None))
    if rule is None:
        return None
    preset = PresetOverIdGenerator(ids)
    tracer.id_generator = preset
    return gate_for(*rule, preset)


def _rule(sampler: Sampler | None) -> tuple[bool, int] | None:
    """(parent-based, bound on the trace id's low 64 bits) of a sampler the gate can predict."""
    if type(sampler) is ParentBased or (
        isinstance(sampler, ParentBased) and type(sampler).should_sample is ParentBased.should_sample
    ):
        delegates = [
            getattr(sampler, f"_{k}_parent_{s}", None)
            for k in ("remote", "local")
            for s in ("sampled", "not_sampled")
        ]
        if delegates != [ALWAYS_ON, ALWAYS_OFF, ALWAYS_ON, ALWAYS_OFF]:
            return None  # parents decide otherwise than by their sampled flag
        root = _bound(getattr(sampler, "_root", None))
        return None if root is None else (True, root)
    bound = _bound(sampler)
    return None if bound is None else (False, bound)


def _bound(sampler: Sampler | None) -> int | None:
    if sampler is ALWAYS_ON:
        return _LIMIT + 1
    if sampler is ALWAYS_OFF:
        return 0
    if (
        isinstance(sampler, TraceIdRatioBased)
        and type(sampler).should_sample is TraceIdRatioBased.should_sample
    ):
        return int(sampler.bound)
    return None  # another sampler, or a StaticSampler other than the SDK's two
