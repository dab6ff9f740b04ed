"""Flatten OTLP protobuf export requests into plain Python dicts.

The flat shapes are shared by the OTLP-JSON file reader, the ``modeltel summary``
command and the test receiver, so every consumer of telemetry sees the same
records whatever transport carried them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import HistogramDataPoint, Metric, NumberDataPoint
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = [
    "TEMPORALITY_CUMULATIVE",
    "TEMPORALITY_DELTA",
    "FlatRecord",
    "decode_any_value",
    "decode_attributes",
    "flat_logs",
    "flat_metrics",
    "flat_spans",
    "latest_points",
]

FlatRecord = dict[str, Any]

TEMPORALITY_DELTA = 1
TEMPORALITY_CUMULATIVE = 2


def decode_any_value(value: AnyValue) -> Any:
    """Convert an OTLP ``AnyValue`` to Python: kvlist -> dict, array -> list, unset -> None."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [decode_any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return decode_attributes(value.kvlist_value.values)
    return getattr(value, kind)


def decode_attributes(attributes: Iterable[KeyValue]) -> dict[str, Any]:
    """Convert repeated OTLP ``KeyValue`` pairs to a dict."""
    return {kv.key: decode_any_value(kv.value) for kv in attributes}


def _resource(resource: Resource) -> dict[str, Any]:
    return decode_attributes(resource.attributes)


def flat_spans(request: ExportTraceServiceRequest) -> list[FlatRecord]:
    """Return one flat dict per span in ``request``."""
    return [
        {**_span(span), "resource": _resource(rs.resource), "scope": ss.scope.name}
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]


def _span(span: Span) -> FlatRecord:
    return {
        "name": span.name,
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "kind": span.kind,
        "start_ns": span.start_time_unix_nano,
        "end_ns": span.end_time_unix_nano,
        "attributes": decode_attributes(span.attributes),
        "status_code": span.status.code,
        "status_message": span.status.message,
        "events": [{"name": e.name, "attributes": decode_attributes(e.attributes)} for e in span.events],
    }


def flat_metrics(request: ExportMetricsServiceRequest) -> list[FlatRecord]:
    """Return one flat dict per sum, gauge or histogram data point in ``request``.

    Exponential histograms and summaries are not used by modeltel and are skipped.
    """
    return [
        {**point, "resource": _resource(rm.resource), "scope": sm.scope.name}
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        for point in _metric_points(metric)
    ]


def _metric_points(metric: Metric) -> Iterator[FlatRecord]:
    kind = metric.WhichOneof("data")
    common = {"name": metric.name, "unit": metric.unit, "type": kind}
    if kind == "sum":
        shape = {"monotonic": metric.sum.is_monotonic, "temporality": metric.sum.aggregation_temporality}
        for number in metric.sum.data_points:
            yield {**common, **shape, **_number_point(number)}
    elif kind == "gauge":
        for number in metric.gauge.data_points:
            yield {**common, "monotonic": False, "temporality": 0, **_number_point(number)}
    elif kind == "histogram":
        shape = {"monotonic": False, "temporality": metric.histogram.aggregation_temporality}
        for hist in metric.histogram.data_points:
            yield {**common, **shape, **_histogram_point(hist)}


def _point_times(point: NumberDataPoint | HistogramDataPoint) -> FlatRecord:
    return {
        "attributes": decode_attributes(point.attributes),
        "start_ns": point.start_time_unix_nano,
        "time_ns": point.time_unix_nano,
    }


def _number_point(point: NumberDataPoint) -> FlatRecord:
    value: int | float = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
    return {**_point_times(point), "value": value}


def _histogram_point(point: HistogramDataPoint) -> FlatRecord:
    return {
        **_point_times(point),
        "count": point.count,
        "sum": point.sum if point.HasField("sum") else None,
        "bucket_counts": list(point.bucket_counts),
        "explicit_bounds": list(point.explicit_bounds),
        "min": point.min if point.HasField("min") else None,
        "max": point.max if point.HasField("max") else None,
    }


def flat_logs(request: ExportLogsServiceRequest) -> list[FlatRecord]:
    """Return one flat dict per log record in ``request``."""
    return [
        {
            "event_name": record.event_name,
            "body": decode_any_value(record.body),
            "attributes": decode_attributes(record.attributes),
            "severity_number": record.severity_number,
            "severity_text": record.severity_text,
            "time_ns": record.time_unix_nano,
            "observed_time_ns": record.observed_time_unix_nano,
            "trace_id": record.trace_id.hex(),
            "span_id": record.span_id.hex(),
            "resource": _resource(rl.resource),
            "scope": sl.scope.name,
        }
        for rl in request.resource_logs
        for sl in rl.scope_logs
        for record in sl.log_records
    ]


def _series_key(point: FlatRecord) -> str:
    # The whole resource (which carries service.instance.id) plus start_ns identify one
    # process's stream: two processes sharing a resource still differ in start time.
    identity = [point["resource"], point["scope"], point["name"], point["attributes"], point["start_ns"]]
    return json.dumps(identity, sort_keys=True, default=repr)


def latest_points(points: Iterable[FlatRecord]) -> list[FlatRecord]:
    """Keep the newest point of each cumulative (or gauge) series and every delta point.

    Cumulative points are re-exported periodically with running totals, so only the
    latest one per series may be summed; delta points each carry new data and are all kept.
    """
    latest: dict[str, FlatRecord] = {}
    deltas: list[FlatRecord] = []
    for point in points:
        if point["temporality"] == TEMPORALITY_DELTA:
            deltas.append(point)
            continue
        key = _series_key(point)
        kept = latest.get(key)
        if kept is None or point["time_ns"] >= kept["time_ns"]:
            latest[key] = point
    return [*latest.values(), *deltas]
