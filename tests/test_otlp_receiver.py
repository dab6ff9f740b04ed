"""The test OTLP receiver decodes what the real OTel SDK exporters send over gRPC and HTTP."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, StatusCode

from modeltel._export.otlp_flat import latest_points
from otlp_receiver import HungServer, OtlpReceiver, closed_port, metric_total

TRANSPORTS = ("grpc", "http")
RESOURCE = Resource.create({"service.name": "scoring", "service.instance.id": "instance-1"})
MODEL_ATTRS = {"ml.model.name": "churn", "ml.model.version": "3", "ml.tenant": "acme"}
BOUNDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0]
NEVER_MS = 10**9
HUNG_TIMEOUT_S = 1.0
HUNG_SLACK_S = 3.0


@dataclass
class Exporters:
    spans: SpanExporter
    metrics: MetricExporter
    logs: LogRecordExporter


def _exporters(transport: str, receiver: OtlpReceiver, compression: Compression | None = None) -> Exporters:
    if transport == "grpc":
        url = receiver.grpc_endpoint
        return Exporters(
            GrpcSpanExporter(endpoint=url, insecure=True),
            GrpcMetricExporter(endpoint=url, insecure=True),
            GrpcLogExporter(endpoint=url, insecure=True),
        )
    url = receiver.http_endpoint
    return Exporters(
        HttpSpanExporter(endpoint=f"{url}/v1/traces", compression=compression),
        HttpMetricExporter(endpoint=f"{url}/v1/metrics", compression=compression),
        HttpLogExporter(endpoint=f"{url}/v1/logs", compression=compression),
    )


def _send_span(exporter: SpanExporter) -> None:
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("modeltel")
    with tracer.start_as_current_span(
        "predict churn", kind=SpanKind.INTERNAL, attributes=MODEL_ATTRS
    ) as span:
        span.add_event("ml.contract.violation", {"ml.feature.name": "age"})
        span.set_status(StatusCode.ERROR, "bad input")
    provider.shutdown()


def _send_metrics(exporter: MetricExporter, flushes: int = 1) -> None:
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=NEVER_MS)
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meter = provider.get_meter("modeltel")
    counter = meter.create_counter("ml.predictions")
    duration = meter.create_histogram(
        "ml.prediction.duration", unit="s", explicit_bucket_boundaries_advisory=BOUNDS
    )
    counter.add(2, {**MODEL_ATTRS, "ml.outcome": "ok"})
    counter.add(1, {**MODEL_ATTRS, "ml.outcome": "error"})
    duration.record(0.003, MODEL_ATTRS)
    duration.record(0.2, MODEL_ATTRS)
    for _ in range(flushes):
        provider.force_flush()
    provider.shutdown()


def _send_log(exporter: LogRecordExporter) -> None:
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    provider.get_logger("modeltel").emit(
        event_name="ml.features",
        body={"age": 42, "plan": "pro", "flags": [True, False]},
        attributes=MODEL_ATTRS,
    )
    provider.shutdown()


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_span_is_decoded(receiver: OtlpReceiver, transport: str) -> None:
    """A span exported by the SDK arrives with its name, ids, attributes, status, event and resource."""
    _send_span(_exporters(transport, receiver).spans)
    [span] = receiver.spans()
    assert span["name"] == "predict churn"
    assert len(span["trace_id"]) == 32 and len(span["span_id"]) == 16 and span["parent_span_id"] == ""
    assert span["attributes"] == MODEL_ATTRS
    assert span["kind"] == 1  # SPAN_KIND_INTERNAL
    assert (span["status_code"], span["status_message"]) == (2, "bad input")
    assert span["events"] == [{"name": "ml.contract.violation", "attributes": {"ml.feature.name": "age"}}]
    assert span["resource"]["service.name"] == "scoring"
    assert span["scope"] == "modeltel"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_counter_points_are_decoded(receiver: OtlpReceiver, transport: str) -> None:
    """Counter points arrive as monotonic cumulative sums with their attributes and values."""
    _send_metrics(_exporters(transport, receiver).metrics)
    counters = [p for p in latest_points(receiver.metrics()) if p["name"] == "ml.predictions"]
    by_outcome = {p["attributes"]["ml.outcome"]: p["value"] for p in counters}
    assert by_outcome == {"ok": 2, "error": 1}
    assert all(p["type"] == "sum" and p["monotonic"] and p["temporality"] == 2 for p in counters)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_histogram_points_are_decoded(receiver: OtlpReceiver, transport: str) -> None:
    """Histogram points arrive with count, sum, min, max, bounds and bucket counts."""
    _send_metrics(_exporters(transport, receiver).metrics)
    [hist] = [p for p in latest_points(receiver.metrics()) if p["name"] == "ml.prediction.duration"]
    assert (hist["type"], hist["unit"], hist["count"]) == ("histogram", "s", 2)
    assert hist["sum"] == pytest.approx(0.203)
    assert (hist["min"], hist["max"]) == (0.003, 0.2)
    assert hist["explicit_bounds"] == BOUNDS
    assert hist["bucket_counts"] == [0, 1, 0, 0, 0, 1, 0, 0]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_log_record_is_decoded(receiver: OtlpReceiver, transport: str) -> None:
    """A log record arrives with its event name, structured body and attributes."""
    _send_log(_exporters(transport, receiver).logs)
    [record] = receiver.logs()
    assert record["event_name"] == "ml.features"
    assert record["body"] == {"age": 42, "plan": "pro", "flags": [True, False]}
    assert record["attributes"] == MODEL_ATTRS
    assert record["resource"]["service.instance.id"] == "instance-1"


def test_gzip_http_request_is_decoded(receiver: OtlpReceiver) -> None:
    """An HTTP export compressed with gzip is decompressed before decoding."""
    _send_span(_exporters("http", receiver, Compression.Gzip).spans)
    assert [s["name"] for s in receiver.spans()] == ["predict churn"]


def test_requests_are_counted_per_signal_and_transport(receiver: OtlpReceiver) -> None:
    """requests_received counts each export request under (signal, transport)."""
    _send_span(_exporters("grpc", receiver).spans)
    _send_log(_exporters("http", receiver).logs)
    assert receiver.requests_received == {("traces", "grpc"): 1, ("logs", "http"): 1}


def test_wait_until_returns_true_once_predicate_holds(receiver: OtlpReceiver) -> None:
    """wait_until wakes up on a request and reports that the predicate holds."""
    _send_log(_exporters("grpc", receiver).logs)
    assert receiver.wait_until(lambda r: len(r.logs()) == 1, timeout=5)


def test_wait_until_returns_false_on_timeout(receiver: OtlpReceiver) -> None:
    """wait_until gives up after the timeout when nothing satisfies the predicate."""
    assert not receiver.wait_until(lambda r: bool(r.spans()), timeout=0.05)


def test_metric_total_uses_latest_cumulative_point(receiver: OtlpReceiver) -> None:
    """metric_total does not double count a cumulative series exported several times."""
    _send_metrics(_exporters("grpc", receiver).metrics, flushes=3)
    assert receiver.requests_received[("metrics", "grpc")] >= 3
    assert metric_total(receiver.metrics(), "ml.predictions", **{"ml.outcome": "ok"}) == 2
    assert metric_total(receiver.metrics(), "ml.predictions", **MODEL_ATTRS) == 3


def test_http_unknown_path_is_404(receiver: OtlpReceiver) -> None:
    """POSTs outside /v1/{traces,metrics,logs} are rejected and not recorded."""
    port = int(receiver.http_endpoint.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(
            "POST", "/v1/profiles", body=b"", headers={"Content-Type": "application/x-protobuf"}
        )
        assert connection.getresponse().status == 404
    finally:
        connection.close()
    assert sum(receiver.requests_received.values()) == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_hung_server_makes_export_fail_within_timeout(transport: str) -> None:
    """An exporter with a 1 s timeout against a silent server returns FAILURE without hanging."""
    with HungServer() as hung:
        if transport == "grpc":
            exporter: SpanExporter = GrpcSpanExporter(
                endpoint=hung.endpoint, insecure=True, timeout=HUNG_TIMEOUT_S
            )
        else:
            exporter = HttpSpanExporter(endpoint=f"{hung.endpoint}/v1/traces", timeout=HUNG_TIMEOUT_S)
        span = TracerProvider(resource=RESOURCE).get_tracer("modeltel").start_span("predict churn")
        span.end()
        started = time.monotonic()
        result = exporter.export([span])  # type: ignore[list-item]
        elapsed = time.monotonic() - started
        exporter.shutdown()
    assert result is SpanExportResult.FAILURE
    assert elapsed < HUNG_TIMEOUT_S + HUNG_SLACK_S


def test_closed_port_refuses_connections() -> None:
    """Nothing listens on closed_port(), so connecting is refused."""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port()), timeout=5).close()
