"""Test helpers for users of modeltel (and for modeltel's own tests).

``capture()`` swaps in a runtime whose spans, metrics and logs stay in memory::

    from modeltel.testing import capture

    def test_predict_is_counted():
        with capture() as cap:
            predict({"amount": 3.0}, tenant="acme")
        assert cap.counter("ml.predictions", **{"ml.outcome": "ok"}) == 1

With pytest, the ``modeltel_capture`` fixture does the same (the plugin loads automatically).
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from modeltel import _names as n
from modeltel._config import load_settings
from modeltel._contract.parity import assert_same_features
from modeltel._export.exporters import Sinks
from modeltel._export.records import decoded_body, record_rows
from modeltel._export.runtime import Runtime, build_runtime, install_runtime
from modeltel._features import BATCH_ROW, feature_rows

__all__ = ["Capture", "InMemoryMetricExporter", "assert_same_features", "capture"]


class InMemoryMetricExporter(MetricExporter):
    """Keeps the last export (cumulative data: the last one holds everything)."""

    def __init__(self) -> None:
        super().__init__(preferred_temporality={})
        self._lock = threading.Lock()
        self.last: MetricsData | None = None

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        with self._lock:
            self.last = metrics_data
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


class Capture:
    """What modeltel recorded while the capture was active."""

    def __init__(
        self,
        runtime: Runtime,
        spans: InMemorySpanExporter,
        metrics: InMemoryMetricExporter,
        logs: InMemoryLogRecordExporter,
    ) -> None:
        self.runtime = runtime
        self._spans = spans
        self._metrics = metrics
        self._logs = logs

    @property
    def spans(self) -> list[ReadableSpan]:
        """Finished spans, oldest first."""
        self.runtime.force_flush()
        return list(self._spans.get_finished_spans())

    @property
    def logs(self) -> list[ReadableLogRecord]:
        """Emitted log records (sampled features, prediction records), oldest first, bodies as
        emitted: the prediction records' and batch feature records' bodies are JSON text."""
        self.runtime.force_flush()
        return list(self._logs.get_finished_logs())

    def feature_records(self) -> list[ReadableLogRecord]:
        """The ``ml.features`` log records, one per sampled prediction.

        A batch call writes one record for all its sampled rows (its body JSON text); here it is
        split into one record per row shaped like a single call's (body ``{"features": {...}}``,
        the row's ``ml.payload.hash``, ``ml.prediction.score`` (absent when null) and
        ``ml.contract.violations``, and ``ml.batch.row``), so a test reads batches and single
        calls alike. :attr:`logs` has the records as emitted.
        """
        return [row for r in self.logs if r.log_record.event_name == n.EVENT_FEATURES for row in _per_row(r)]

    def feature_rows(self) -> list[dict[str, Any]]:
        """Every sampled prediction, single call or batch row, as a dict: ``features``,
        ``prediction_id`` (``<call id>/<row>`` for a batch row), ``payload_hash``, ``score``,
        ``decision``, ``violations``, ``row`` (None for a single call), ``tenant``, ``outcome``."""
        return [
            row
            for r in self.logs
            if r.log_record.event_name == n.EVENT_FEATURES
            for row in feature_rows(dict(r.log_record.attributes or {}), r.log_record.body)
        ]

    def prediction_rows(self, model: str | None = None, version: str | None = None) -> list[dict[str, Any]]:
        """Every row of the ``ml.prediction.records`` records (of ``model`` / ``version`` when
        given), oldest first, as a dict keyed by column: ``prediction_id``, ``payload_hash``,
        ``tenant``, ``score`` (None when missing, NaN or infinite), ``decision``, ``outcome``,
        ``time_unix_nano``, ``duration_s``, ``cost``. The body's JSON text is decoded here."""
        rows: list[dict[str, Any]] = []
        for r in self.logs:
            attrs = r.log_record.attributes or {}
            if r.log_record.event_name != n.EVENT_RECORDS:
                continue
            if model is not None and attrs.get(n.MODEL_NAME) != model:
                continue
            if version is not None and attrs.get(n.MODEL_VERSION) != version:
                continue
            rows.extend(record_rows(r.log_record.body))
        return rows

    def metric_points(self, name: str, **attrs: Any) -> list[Any]:
        """Data points of metric ``name`` whose attributes include ``attrs``."""
        self.runtime.force_flush()
        data = self._metrics.last
        if data is None:
            return []
        points: list[Any] = []
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        points.extend(p for p in m.data.data_points if _matches(p.attributes, attrs))
        return points

    def counter(self, name: str, **attrs: Any) -> float:
        """The total of a counter over the series matching ``attrs`` (0 when none)."""
        return float(sum(p.value for p in self.metric_points(name, **attrs)))

    def histogram_count(self, name: str, **attrs: Any) -> int:
        """How many values a histogram recorded over the series matching ``attrs``."""
        return sum(p.count for p in self.metric_points(name, **attrs))


def _per_row(record: ReadableLogRecord) -> list[ReadableLogRecord]:
    """A batch ``ml.features`` record as one record per row; any other record as it is."""
    body = decoded_body(record.log_record.body)
    if not (isinstance(body, dict) and isinstance(body.get("row"), list)):
        return [record]
    attributes = dict(record.log_record.attributes or {})
    shared = {k: v for k, v in attributes.items() if k not in (n.CONTRACT_VIOLATIONS, n.BATCH_SIZE)}
    split = []
    for row in feature_rows(attributes, body):
        attrs = {**shared, n.PAYLOAD_HASH: row["payload_hash"]}
        for key, value in ((n.SCORE, row["score"]), (n.DECISION, row["decision"]), (BATCH_ROW, row["row"])):
            if value is not None:
                attrs[key] = value
        if row["violations"]:
            attrs[n.CONTRACT_VIOLATIONS] = row["violations"]
        log_record = copy.copy(record.log_record)
        log_record.body, log_record.attributes = {"features": row["features"]}, attrs
        one = copy.copy(record)
        object.__setattr__(one, "log_record", log_record)  # ReadableLogRecord is frozen
        split.append(one)
    return split


def _matches(point_attrs: Any, wanted: dict[str, Any]) -> bool:
    attrs = dict(point_attrs or {})
    return all(attrs.get(k.replace("__", ".")) == v or attrs.get(k) == v for k, v in wanted.items())


@contextmanager
def capture(**settings: Any) -> Iterator[Capture]:
    """Record into memory while the block runs; keyword arguments are ``configure()`` settings.

    The environment is ignored, so tests see the same defaults wherever they run; the feature
    sample rate defaults to 0 (pass ``feature_sample_rate=`` to sample).
    """
    settings.setdefault("feature_sample_rate", 0.0)
    resolved = load_settings(settings, environ={})
    spans, metrics = InMemorySpanExporter(), InMemoryMetricExporter()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    metrics._preferred_temporality = {k: AggregationTemporality.CUMULATIVE for k in _instrument_types()}
    runtime = build_runtime(
        resolved,
        Sinks(spans, metrics, logs, "memory"),
        install_globals=False,
        export_interval_millis=math.inf,
    )
    previous = install_runtime(runtime)
    try:
        yield Capture(runtime, spans, metrics, logs)
    finally:
        runtime.shutdown(timeout_s=5)
        install_runtime(previous) if previous is not None else _clear()


def _instrument_types() -> Sequence[type]:
    from opentelemetry.sdk.metrics import (
        Counter,
        Histogram,
        ObservableCounter,
        ObservableGauge,
        ObservableUpDownCounter,
        UpDownCounter,
    )

    return (Counter, Histogram, ObservableCounter, ObservableGauge, ObservableUpDownCounter, UpDownCounter)


def _clear() -> None:
    from modeltel._export.runtime import _state

    with _state.lock:
        _state.runtime = None


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional for users
    pass
else:

    @pytest.fixture
    def modeltel_capture() -> Iterator[Capture]:
        """A :class:`Capture` active for the duration of one test."""
        with capture() as cap:
            yield cap
