"""OTLP/JSON file exporters write collector-readable lines that read_otlp_json reads back."""

from __future__ import annotations

import base64
import json
import logging
import math
import multiprocessing
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from modeltel._export.otlp_json import (
    OtlpJsonFileLogExporter,
    OtlpJsonFileMetricExporter,
    OtlpJsonFileSpanExporter,
    read_otlp_json,
)
from otlp_receiver import OtlpReceiver

RESOURCE = Resource.create({"service.name": "scoring", "service.instance.id": "instance-1"})
ATTRS: dict[str, AttributeValue] = {
    "ml.model.name": "churn",
    "ml.tenant": "acme",
    "ratio": 0.25,
    "rows": 7,
    "cached": True,
    "tags": ["a", "b"],
}
NEVER_MS = 10**9
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
JOIN_TIMEOUT_S = 60
SPANS_PER_PROCESS = 150
BIG_VALUE = "x" * 20_000  # lines far above PIPE_BUF, so atomicity is not an accident of size


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _spans_in(tracer_provider: TracerProvider) -> None:
    tracer = tracer_provider.get_tracer("modeltel")
    with tracer.start_as_current_span("predict churn", kind=SpanKind.SERVER, attributes=ATTRS) as span:
        span.add_event("ml.contract.violation", {"ml.feature.name": "age"})
        with tracer.start_as_current_span("feature lookup"):
            pass


def _captured_spans() -> tuple[ReadableSpan, ...]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _spans_in(provider)
    return memory.get_finished_spans()


def _captured_logs() -> tuple[ReadableLogRecord, ...]:
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    logs = LoggerProvider(resource=RESOURCE)
    logs.add_log_record_processor(SimpleLogRecordProcessor(memory))
    tracer = TracerProvider(resource=RESOURCE).get_tracer("modeltel")
    with tracer.start_as_current_span("predict churn"):
        logs.get_logger("modeltel").emit(
            event_name="ml.features",
            body={"age": 42, "blob": b"\x00\xff", "nested": [1.5, None]},
            attributes=ATTRS,
        )
    return memory.get_finished_logs()


def _captured_metrics() -> MetricsData:
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meter = provider.get_meter("modeltel")
    tracer = TracerProvider(resource=RESOURCE).get_tracer("modeltel")
    meter.create_counter("ml.predictions").add(3, {**ATTRS, "ml.outcome": "ok"})
    meter.create_up_down_counter("inflight").add(-2)
    meter.create_gauge("queue.depth").set(4.5)
    duration = meter.create_histogram(
        "ml.prediction.duration", unit="s", explicit_bucket_boundaries_advisory=[0.01, 0.1]
    )
    with tracer.start_as_current_span("predict churn"):  # a sampled span makes the SDK keep exemplars
        duration.record(0.05, ATTRS)
    data = reader.get_metrics_data()
    assert data is not None
    return data


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def test_span_exporter_writes_one_line_per_export(tmp_path: Path) -> None:
    """Every export call appends exactly one OTLP/JSON line to traces.jsonl."""
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(OtlpJsonFileSpanExporter(tmp_path)))
    _spans_in(provider)
    provider.shutdown()
    lines = _lines(tmp_path / "traces.jsonl")
    assert len(lines) == 2
    assert all(len(line["resourceSpans"][0]["scopeSpans"][0]["spans"]) == 1 for line in lines)


def test_span_ids_are_lowercase_hex(tmp_path: Path) -> None:
    """traceId, spanId and parentSpanId are written as lowercase hex, not base64."""
    spans = _captured_spans()
    OtlpJsonFileSpanExporter(tmp_path).export(spans)
    [line] = _lines(tmp_path / "traces.jsonl")
    written = line["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert all(HEX32.match(s["traceId"]) and HEX16.match(s["spanId"]) for s in written)
    child = next(s for s in written if s["name"] == "feature lookup")
    assert child["parentSpanId"] == format(spans[0].parent.span_id, "016x")  # type: ignore[union-attr]


def test_enums_are_integers(tmp_path: Path) -> None:
    """Span kind and metric temporality are JSON integers."""
    OtlpJsonFileSpanExporter(tmp_path).export(_captured_spans())
    OtlpJsonFileMetricExporter(tmp_path).export(_captured_metrics())
    [trace_line] = _lines(tmp_path / "traces.jsonl")
    [metric_line] = _lines(tmp_path / "metrics.jsonl")
    kinds = {s["kind"] for s in trace_line["resourceSpans"][0]["scopeSpans"][0]["spans"]}
    assert kinds == {2, 1}  # SERVER, INTERNAL
    counter = next(m for m in metric_line["resourceMetrics"][0]["scopeMetrics"][0]["metrics"] if "sum" in m)
    assert counter["sum"]["aggregationTemporality"] == 2


def test_log_and_exemplar_ids_are_hex(tmp_path: Path) -> None:
    """Ids nested in log records and histogram exemplars are hex too."""
    OtlpJsonFileLogExporter(tmp_path).export(_captured_logs())
    OtlpJsonFileMetricExporter(tmp_path).export(_captured_metrics())
    [log_line] = _lines(tmp_path / "logs.jsonl")
    record = log_line["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert HEX32.match(record["traceId"]) and HEX16.match(record["spanId"])
    [metric_line] = _lines(tmp_path / "metrics.jsonl")
    hist = next(
        m for m in metric_line["resourceMetrics"][0]["scopeMetrics"][0]["metrics"] if "histogram" in m
    )
    [exemplar] = hist["histogram"]["dataPoints"][0]["exemplars"]
    assert HEX32.match(exemplar["traceId"]) and HEX16.match(exemplar["spanId"])


def test_spans_read_back_as_the_receiver_decodes_them(tmp_path: Path, receiver: OtlpReceiver) -> None:
    """The same spans give identical flat records from the file and from an OTLP/gRPC receiver."""
    spans = _captured_spans()
    assert OtlpJsonFileSpanExporter(tmp_path).export(spans) is SpanExportResult.SUCCESS
    assert (
        OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True).export(spans)
        is SpanExportResult.SUCCESS
    )
    assert read_otlp_json(tmp_path).spans == receiver.spans()
    assert {s["name"] for s in receiver.spans()} == {"predict churn", "feature lookup"}


def test_metrics_read_back_as_the_receiver_decodes_them(tmp_path: Path, receiver: OtlpReceiver) -> None:
    """Sum, gauge and histogram points are identical from the file and from an OTLP/gRPC receiver."""
    data = _captured_metrics()
    assert OtlpJsonFileMetricExporter(tmp_path).export(data) is MetricExportResult.SUCCESS
    assert (
        OTLPMetricExporter(endpoint=receiver.grpc_endpoint, insecure=True).export(data)
        is MetricExportResult.SUCCESS
    )
    assert read_otlp_json(tmp_path).metrics == receiver.metrics()
    assert {p["name"] for p in receiver.metrics()} == {
        "ml.predictions",
        "inflight",
        "queue.depth",
        "ml.prediction.duration",
    }


def test_logs_read_back_as_the_receiver_decodes_them(tmp_path: Path, receiver: OtlpReceiver) -> None:
    """Log records (structured body with bytes, event name, ids) are identical from file and receiver."""
    logs = _captured_logs()
    assert OtlpJsonFileLogExporter(tmp_path).export(logs) is LogRecordExportResult.SUCCESS
    assert (
        OTLPLogExporter(endpoint=receiver.grpc_endpoint, insecure=True).export(logs)
        is LogRecordExportResult.SUCCESS
    )
    [record] = read_otlp_json(tmp_path).logs
    assert [record] == receiver.logs()
    assert record["body"] == {"age": 42, "blob": b"\x00\xff", "nested": [1.5, None]}
    assert record["event_name"] == "ml.features"


def test_values_survive_the_round_trip(tmp_path: Path) -> None:
    """Attribute types and 64-bit integers (written as JSON strings) come back as Python values."""
    OtlpJsonFileMetricExporter(tmp_path).export(_captured_metrics())
    points = {p["name"]: p for p in read_otlp_json(tmp_path).metrics}
    assert points["ml.predictions"]["value"] == 3
    assert points["ml.predictions"]["attributes"] == {**ATTRS, "ml.outcome": "ok"}
    assert points["inflight"]["value"] == -2
    assert points["queue.depth"]["value"] == 4.5
    assert points["ml.prediction.duration"]["bucket_counts"] == [0, 1, 0]


def test_malformed_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    """Lines that are not OTLP/JSON are skipped and counted; valid lines are still read."""
    OtlpJsonFileSpanExporter(tmp_path).export(_captured_spans())
    with (tmp_path / "traces.jsonl").open("a") as traces:
        traces.write(
            'not json\n[1, 2]\n{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}\n\n'
        )
    (tmp_path / "logs.jsonl").write_text('{"resourceLogs": "nope"}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    files = read_otlp_json(tmp_path)
    assert files.bad_lines == 5
    assert len(files.spans) == 2


def test_missing_files_read_as_empty(tmp_path: Path) -> None:
    """A folder without telemetry files yields empty lists and no bad lines."""
    files = read_otlp_json(tmp_path / "nothing-here")
    assert (files.spans, files.metrics, files.logs, files.bad_lines) == ([], [], [], 0)


def test_missing_folder_is_created(tmp_path: Path) -> None:
    """The exporter creates its folder, including parents, on first export."""
    folder = tmp_path / "a" / "b"
    OtlpJsonFileLogExporter(folder).export(_captured_logs())
    assert len(_lines(folder / "logs.jsonl")) == 1


def test_unwritable_folder_fails_and_logs_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Write errors return FAILURE instead of raising, with one warning for repeated failures."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    exporter = OtlpJsonFileSpanExporter(blocker)
    spans = _captured_spans()
    with caplog.at_level(logging.DEBUG, logger="modeltel"):
        results = [exporter.export(spans), exporter.export(spans)]
    assert results == [SpanExportResult.FAILURE, SpanExportResult.FAILURE]
    warnings = [r for r in caplog.records if r.name == "modeltel" and r.levelno >= logging.WARNING]
    assert len(warnings) == 1


def test_metric_exporter_is_cumulative_by_default(tmp_path: Path) -> None:
    """Consecutive exports carry running totals with cumulative temporality."""
    reader = PeriodicExportingMetricReader(
        OtlpJsonFileMetricExporter(tmp_path), export_interval_millis=NEVER_MS
    )
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    counter = provider.get_meter("modeltel").create_counter("ml.predictions")
    for _ in range(2):
        counter.add(1)
        provider.force_flush()
    provider.shutdown()
    values = [(p["value"], p["temporality"]) for p in read_otlp_json(tmp_path).metrics]
    assert values[:2] == [(1, 2), (2, 2)]


def test_metric_exporter_honours_preferred_temporality(tmp_path: Path) -> None:
    """preferred_temporality overrides the cumulative default for the given instrument."""
    exporter = OtlpJsonFileMetricExporter(
        tmp_path, preferred_temporality={Counter: AggregationTemporality.DELTA}
    )
    provider = MeterProvider(
        metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=NEVER_MS)]
    )
    counter = provider.get_meter("modeltel").create_counter("ml.predictions")
    for _ in range(2):
        counter.add(1)
        provider.force_flush()
    provider.shutdown()
    values = [(p["value"], p["temporality"]) for p in read_otlp_json(tmp_path).metrics]
    assert values[:2] == [(1, 1), (1, 1)]


def test_metric_exporter_shutdown_is_idempotent(tmp_path: Path) -> None:
    """Shutting down twice is harmless and later exports fail without writing."""
    exporter = OtlpJsonFileMetricExporter(tmp_path)
    exporter.shutdown()
    exporter.shutdown()
    assert exporter.export(_captured_metrics()) is MetricExportResult.FAILURE
    assert exporter.force_flush()
    assert not (tmp_path / "metrics.jsonl").exists()


def test_threads_sharing_an_exporter_write_whole_lines(tmp_path: Path) -> None:
    """Concurrent exports from several threads produce only complete lines."""
    exporter = OtlpJsonFileSpanExporter(tmp_path)
    spans = _captured_spans()
    start = threading.Barrier(4)

    def work() -> None:
        start.wait(timeout=JOIN_TIMEOUT_S)
        for _ in range(50):
            exporter.export(spans)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    files = read_otlp_json(tmp_path)
    assert (files.bad_lines, len(files.spans)) == (0, 4 * 50 * len(spans))


def _write_big_spans(folder: str, worker: int, start: Any) -> None:
    """Child process body: wait for the start signal, then export one large span per line."""
    provider = TracerProvider(resource=Resource.create({"service.instance.id": f"worker-{worker}"}))
    provider.add_span_processor(SimpleSpanProcessor(OtlpJsonFileSpanExporter(folder)))
    tracer = provider.get_tracer("modeltel")
    if not start.wait(JOIN_TIMEOUT_S):
        raise TimeoutError("start signal never came")
    for index in range(SPANS_PER_PROCESS):
        tracer.start_span(f"span {worker}-{index}", attributes={"payload": BIG_VALUE}).end()
    provider.shutdown()


def test_processes_appending_concurrently_write_whole_lines(tmp_path: Path) -> None:
    """Two spawned processes appending large lines to one file never interleave bytes."""
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [context.Process(target=_write_big_spans, args=(str(tmp_path), n, start)) for n in range(2)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(JOIN_TIMEOUT_S)
    assert [w.exitcode for w in workers] == [0, 0]
    files = read_otlp_json(tmp_path)
    assert files.bad_lines == 0
    assert len(files.spans) == 2 * SPANS_PER_PROCESS
    assert all(s["attributes"]["payload"] == BIG_VALUE for s in files.spans)


def _reference_json(message: Any) -> Any:
    """What protobuf's own JSON printer writes, ids turned to hex: the OTLP/JSON definition."""
    from google.protobuf import json_format

    def hex_ids(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") else hex_ids(v)
                for k, v in node.items()
            }
        return [hex_ids(item) for item in node] if isinstance(node, list) else node

    return hex_ids(json_format.MessageToDict(message, use_integers_for_enums=True))


def _edge_values() -> list[Any]:
    """Messages with the values proto3 JSON spells specially: non-finite doubles, 64-bit ints,
    bytes, oneof members at their default, an empty string."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
    from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint

    values = [
        AnyValue(double_value=math.nan),
        AnyValue(double_value=math.inf),
        AnyValue(double_value=-math.inf),
        AnyValue(double_value=0.0),
        AnyValue(int_value=0),
        AnyValue(int_value=-(2**63)),
        AnyValue(bool_value=False),
        AnyValue(string_value=""),
        AnyValue(bytes_value=b"\x00\xff"),
        AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=2**62), AnyValue(double_value=1e300)])),
    ]
    points = [NumberDataPoint(as_double=v, time_unix_nano=2**63 + 1) for v in (math.nan, -math.inf, 1.5)]
    return [
        LogRecord(
            body=AnyValue(array_value=ArrayValue(values=values)),
            attributes=[KeyValue(key=f"k{i}", value=v) for i, v in enumerate(values)],
            trace_id=bytes(range(16)),
            span_id=bytes(range(8)),
            severity_number=9,
            flags=1,
        ),
        Metric(name="g", gauge=Gauge(data_points=points)),
    ]


def test_otlp_json_is_what_protobufs_json_printer_writes() -> None:
    """Spans (events, parents, status), metrics (sums, gauges, histograms with exemplars), logs
    (map and bytes bodies) and the values proto3 JSON spells specially all convert exactly as
    protobuf's own printer does, with hex ids."""
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from modeltel._export.otlp_json import to_otlp_json

    messages = [
        encode_spans(_captured_spans()),
        encode_metrics(_captured_metrics()),
        encode_logs(_captured_logs()),
        *_edge_values(),
    ]
    for message in messages:
        assert to_otlp_json(message) == _reference_json(message)
