"""An application with its own OpenTelemetry providers (sampler, temporality and exporters from the
standard ``OTEL_*`` variables), counting what modeltel makes its SDK do. The fast-path tests run
it as a subprocess.

``python app_fast_path_app.py CALLS READER``: READER is ``periodic`` (OTLP/HTTP on a timer that
never fires in the run) or ``memory`` (an InMemoryMetricReader, read on demand); APP_SAMPLER=own
gives the TracerProvider a sampler of the application's own, APP_VIEW=1 the MeterProvider a View
re-bucketing ``ml.prediction.score``, not one from ``OTEL_TRACES_SAMPLER*``. CALLS root
predictions in two halves, each followed by ``modeltel.force_flush()``; then CALLS / 10 under a
sampled remote parent and as many under an unsampled one; then ``modeltel.shutdown()``, and
one more count of the application's, flushed by the application. Beside modeltel, the application
records the same scores, predictions and cost on instruments of its own, its plain-SDK reference.
Prints one JSON line: what modeltel's flushes returned, how many measurements the application's
SDK saw from modeltel, how many spans modeltel's tracer created, how many of the application's
spans inside predict were unsampled and in how many traces, the remote parents' ids, and (memory
reader) modeltel's and the reference's points.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from opentelemetry import context, metrics, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import ExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

HOUR_MS = 3_600_000
SCORES = [0.0, 0.05, 0.5, 1.0, 0.3, 0.75, 0.999, 1.5, 0.42]


class CountingFilter(ExemplarFilter):
    """Sees every measurement the SDK records; counts those carrying modeltel's attributes."""

    def __init__(self) -> None:
        self.modeltel = 0

    def should_sample(self, value: Any, time_unix_nano: int, attributes: Any, ctx: Any) -> bool:
        if attributes and "ml.model.name" in attributes:
            self.modeltel += 1
        return False


class CountingIds(RandomIdGenerator):
    """The SDK's random ids; every span created, sampled or not, takes one span id."""

    def __init__(self) -> None:
        self.spans = 0

    def generate_span_id(self) -> int:
        self.spans += 1
        return super().generate_span_id()


class DropAll(Sampler):
    """A sampler of the application's own: modeltel cannot predict it."""

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        return "DropAll"


calls, reader_kind = int(sys.argv[1]), sys.argv[2]
ids = CountingIds()
own_sampler = {"sampler": DropAll()} if os.environ.get("APP_SAMPLER") == "own" else {}
tracer_provider = TracerProvider(id_generator=ids, **own_sampler)  # else from OTEL_TRACES_SAMPLER*
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=HOUR_MS))
exemplars = CountingFilter()
memory = InMemoryMetricReader()
periodic = PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=HOUR_MS)
views = [View(instrument_name="ml.prediction.score", aggregation=ExplicitBucketHistogramAggregation([0.5]))]
meter_provider = MeterProvider(
    metric_readers=[memory if reader_kind == "memory" else periodic],
    exemplar_filter=exemplars,
    views=views if os.environ.get("APP_VIEW") else (),
)
trace.set_tracer_provider(tracer_provider)
metrics.set_meter_provider(meter_provider)

import modeltel  # noqa: E402  (after the providers, as in an app that had OTel first)
from modeltel import _names as n  # noqa: E402

app_meter = meter_provider.get_meter("reference")
ref_score = app_meter.create_histogram("ref.score", explicit_bucket_boundaries_advisory=list(n.SCORE_BOUNDS))
ref_predictions = app_meter.create_counter("ref.predictions")
ref_cost = app_meter.create_counter("ref.cost")


app_spans = [0]
unsampled_trace_ids: list[int] = []


@modeltel.instrument(model="fast", version="1", tenant="tenant", cost=0.25)
def predict(features: dict[str, float], tenant: str) -> float:
    app_spans[0] += 1
    with trace.get_tracer("app").start_as_current_span("inside predict") as span:
        inner = span.get_span_context()
        if not inner.trace_flags.sampled:
            unsampled_trace_ids.append(inner.trace_id)
        return features["s"]


def call(i: int) -> None:
    score = SCORES[i % len(SCORES)]
    predict({"s": score}, tenant="acme")
    ref_score.record(score, {"ref": "1"})
    ref_predictions.add(1, {"ref": "1"})
    ref_cost.add(0.25, {"ref": "1"})


def under_remote_parent(sampled: bool, count: int) -> dict[str, str]:
    flags = trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else trace.TraceFlags.DEFAULT)
    parent = trace.SpanContext(0xABC0 + sampled, 0xDEF0 + sampled, is_remote=True, trace_flags=flags)
    token = context.attach(trace.set_span_in_context(trace.NonRecordingSpan(parent)))
    try:
        for i in range(count):
            call(i)
    finally:
        context.detach(token)
    return {"trace_id": f"{parent.trace_id:032x}", "span_id": f"{parent.span_id:016x}"}


def points() -> dict[str, list[Any]]:
    """Every point the memory reader holds, by metric name (the reader is cumulative)."""
    found: dict[str, list[Any]] = {}
    data = memory.get_metrics_data()
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    if hasattr(p, "bucket_counts"):
                        value: Any = {"count": p.count, "sum": p.sum, "buckets": list(p.bucket_counts)}
                    else:
                        value = p.value
                    found.setdefault(m.name, []).append(value)
    return found


def main() -> None:
    flushes = []
    for half in (range(calls // 2), range(calls // 2, calls)):
        for i in half:
            call(i)
        flushes.append(modeltel.force_flush())
    sampled = under_remote_parent(True, calls // 10)
    unsampled = under_remote_parent(False, calls // 10)
    flushes.append(modeltel.force_flush())
    flushes.append(modeltel.shutdown())
    app_meter.create_counter("ref.after").add(1)  # the application's exporters outlive modeltel
    flushes.append(meter_provider.force_flush())
    report = {
        "flushed": flushes,
        "measurements": exemplars.modeltel,
        "modeltel_spans_created": ids.spans - app_spans[0],
        "unsampled_inner": len(unsampled_trace_ids),
        "unsampled_inner_traces": len(set(unsampled_trace_ids)),
        "sampled_parent": sampled,
        "unsampled_parent": unsampled,
        "points": points() if reader_kind == "memory" else None,
    }
    print(json.dumps(report), flush=True)
    os._exit(0)  # the receiver has everything: no exit-time export to race the test


if __name__ == "__main__":
    main()
