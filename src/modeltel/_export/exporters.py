"""Where telemetry goes: OTLP (gRPC or HTTP) when an endpoint is set, OTLP-JSON files otherwise."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from modeltel._errors import ConfigurationError
from modeltel._export.aggregate import Aggregator
from modeltel._export.guarded import export_failures, gate
from modeltel._internal import handle_internal_errors, logger
from modeltel._version import __version__

_SIGNALS = ("traces", "metrics", "logs")


@dataclass(frozen=True)
class Sinks:
    """One exporter per signal."""

    spans: SpanExporter
    metrics: MetricExporter
    logs: LogRecordExporter
    description: str


def _env(environ: Mapping[str, str], signal: str, suffix: str) -> tuple[str, str] | None:
    for name in (f"OTEL_EXPORTER_OTLP_{signal.upper()}_{suffix}", f"OTEL_EXPORTER_OTLP_{suffix}"):
        if environ.get(name, "").strip():
            return name, environ[name].strip()
    return None


def otlp_endpoint(environ: Mapping[str, str] | None = None) -> str | None:
    """``VARIABLE=value`` of the first OTLP endpoint variable set, or None (telemetry goes to files)."""
    environ = os.environ if environ is None else environ
    for signal in _SIGNALS:
        found = _env(environ, signal, "ENDPOINT")
        if found is not None:
            return f"{found[0]}={found[1]}"
    return None


def sinks_from_env(output: str, environ: Mapping[str, str] | None = None) -> Sinks:
    """OTLP exporters if any OTLP endpoint variable is set, else OTLP-JSON files under ``output``."""
    environ = os.environ if environ is None else environ
    if otlp_endpoint(environ) is None:
        from modeltel._export.otlp_json import (
            OtlpJsonFileLogExporter,
            OtlpJsonFileMetricExporter,
            OtlpJsonFileSpanExporter,
        )

        return Sinks(
            OtlpJsonFileSpanExporter(output),
            OtlpJsonFileMetricExporter(output),
            OtlpJsonFileLogExporter(output),
            f"OTLP-JSON files in {os.path.abspath(output)}",
        )
    protocols = {s: _protocol(environ, s) for s in _SIGNALS}
    return Sinks(
        _otlp("traces", protocols["traces"]),
        _otlp("metrics", protocols["metrics"]),
        _otlp("logs", protocols["logs"]),
        "OTLP " + ", ".join(f"{s} over {p}" for s, p in protocols.items()),
    )


def _protocol(environ: Mapping[str, str], signal: str) -> str:
    # The OTLP spec's default transport is http/protobuf.
    found = _env(environ, signal, "PROTOCOL")
    if found is None:
        return "http/protobuf"
    name, value = found
    if value not in ("grpc", "http/protobuf"):
        raise ConfigurationError(f"{name}={value!r} is invalid: expected grpc or http/protobuf")
    return value


def _otlp(signal: str, protocol: str) -> Any:
    # The OTLP exporters read endpoint, headers, timeout and TLS settings from OTEL_* themselves.
    if protocol == "grpc":
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter()
        if signal == "metrics":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            return OTLPMetricExporter()
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter()
    if signal == "traces":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

        return HttpSpanExporter()
    if signal == "metrics":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as HttpMetricExporter,
        )

        return HttpMetricExporter()
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter

    return HttpLogExporter()


class MergingMetricExporter(MetricExporter):
    """Adds modeltel's locally aggregated metrics to each export of the SDK's own; with ``delta``,
    what was recorded since the previous export (see :meth:`Aggregator.metrics`)."""

    def __init__(
        self, inner: MetricExporter, aggregator: Aggregator, resource: Resource, delta: bool = False
    ) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._inner = inner
        self._aggregator = aggregator
        self._resource = resource
        self._scope = InstrumentationScope("modeltel", __version__)
        self._pid = os.getpid()
        self._delta = delta

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        if os.getpid() != self._pid:
            # A forked child's copy of the parent's pipeline: the child exports through its own.
            return MetricExportResult.SUCCESS
        merged = metrics_data
        with handle_internal_errors("metrics.merge"):
            merged = self._merge(metrics_data)
        try:
            with gate.export():
                result = self._inner.export(merged, timeout_millis=timeout_millis, **kwargs)
        except Exception as exc:
            logger.warning(
                "modeltel: metric exporter raised %s: %s (counted as a failed export)",
                type(exc).__name__,
                exc,
            )
            result = MetricExportResult.FAILURE
        if result is not MetricExportResult.SUCCESS:
            export_failures.add("metrics")
        return result

    def _merge(self, data: MetricsData) -> MetricsData:
        ours = self._aggregator.metrics(delta=self._delta)
        if not ours:
            return data
        scope_metrics = ScopeMetrics(scope=self._scope, metrics=ours, schema_url="")
        resources: Sequence[ResourceMetrics] = data.resource_metrics
        if not resources:
            return MetricsData([ResourceMetrics(self._resource, [scope_metrics], self._resource.schema_url)])
        first = resources[0]
        merged_first = ResourceMetrics(
            first.resource, _with_scope(first.scope_metrics, scope_metrics), first.schema_url
        )
        return MetricsData([merged_first, *resources[1:]])

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return os.getpid() != self._pid or self._inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        if os.getpid() == self._pid:
            self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


class BorrowedMetricExporter(MetricExporter):
    """An exporter the application owns, used by a reader of modeltel's: shutting the reader down
    flushes the exporter and leaves it running for the application's own readers."""

    def __init__(self, inner: MetricExporter) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self._inner = inner

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._inner.force_flush(timeout_millis=timeout_millis)


def _with_scope(existing: Sequence[ScopeMetrics], ours: ScopeMetrics) -> list[ScopeMetrics]:
    """``existing`` plus ``ours``, as one entry where the SDK already has ours's scope.

    The OTLP encoders keep one entry per scope: a second ``ScopeMetrics`` with the same scope
    replaces the first, and the SDK meter's instruments (``modeltel.internal_errors``,
    ``modeltel.export.failures``) share ours.
    """
    merged: list[ScopeMetrics] = []
    found = False
    for entry in existing:
        if entry.scope == ours.scope:
            entry = ScopeMetrics(entry.scope, [*entry.metrics, *ours.metrics], entry.schema_url)
            found = True
        merged.append(entry)
    return merged if found else [*merged, ours]
